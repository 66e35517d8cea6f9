"""Record types every layer may import: packets, flows, alerts, windows. They import nothing of the package."""
