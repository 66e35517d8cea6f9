"""A fitted IsolationForest's ``score_samples``, all trees at once.

scikit-learn scores tree by tree (a joblib dispatch and a Cython ``apply`` per tree): for the hundred-odd
host windows of one analysis window that is about 25 ms of fixed cost, most of the anomaly model's time.
Here every tree's nodes sit in one set of arrays and all samples descend all trees together, one numpy
step per tree level (about ten), then the depths are summed tree by tree in scikit-learn's order with
scikit-learn's own formulas, so the scores are bit-for-bit its scores (``tests/unit/test_flat_forest.py``).
Inputs with NaN go to scikit-learn, whose trees route missing values their own way.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length

from .scoring import FlatTrees


class FlatForest:
    """The nodes of every tree of a fitted forest, flattened; leaves point at themselves."""

    def __init__(self, forest: IsolationForest) -> None:
        self.forest = forest
        lefts, rights, features, thresholds, leaf_depths, roots = [], [], [], [], [], []
        subsample = forest._max_features != forest.n_features_in_
        offset = 0
        trees = zip(forest.estimators_, forest.estimators_features_, strict=True)
        for tree_idx, (estimator, columns) in enumerate(trees):
            tree = estimator.tree_
            own = np.arange(tree.node_count) + offset
            leaf = tree.children_left == -1
            lefts.append(np.where(leaf, own, tree.children_left + offset))
            rights.append(np.where(leaf, own, tree.children_right + offset))
            feature = np.where(leaf, 0, tree.feature)
            features.append(np.asarray(columns)[feature] if subsample else feature)
            thresholds.append(np.where(leaf, 0.0, tree.threshold))
            # what scikit-learn adds for a sample ending in each node: (path length + leaf correction) - 1
            leaf_depths.append(
                forest._decision_path_lengths[tree_idx] + forest._average_path_length_per_tree[tree_idx] - 1.0
            )
            roots.append(offset)
            offset += tree.node_count
        self.trees = FlatTrees(
            left=np.concatenate(lefts),
            right=np.concatenate(rights),
            feature=np.concatenate(features),
            threshold=np.concatenate(thresholds),
            leaf_depth=np.concatenate(leaf_depths),
            roots=np.asarray(roots),
            levels=max(e.tree_.max_depth for e in forest.estimators_),
            denominator=len(forest.estimators_) * _average_path_length([forest._max_samples]),
        )

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """``IsolationForest.score_samples(X)``: higher is more normal."""
        X32 = np.asarray(X, dtype=np.float32)  # scikit-learn validates to float32 before it compares
        if np.isnan(X32).any():
            return self.forest.score_samples(X)
        return self.trees.score_samples(X32)
