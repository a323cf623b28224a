"""DDR analysis: do a network's deep features cluster by degradation? (Liu et al., "Discovering
Distinctive 'Semantics' in Super-Resolution Networks").

``features`` (patch sets, features at a named layer) -> ``projection`` (PCA -> t-SNE x runs) ->
``scores`` (WD, BD, CHI) -> ``plots``; ``ddr`` ties them together for one layer or several models,
``evolution`` follows a training run's checkpoints.
"""
from .ddr import LayerAnalysis, analyze_layer, default_layer, plot_generalization, plot_layer_analysis
from .features import (check_sets, extract_features, extract_set_features, hr_patch_sets, lr_patch_sets,
                       parse_set_dirs)
from .projection import default_perplexity, pca_reduce, tsne_runs
from .scores import cluster_scores, mean_std, score_runs

__all__ = ['LayerAnalysis', 'analyze_layer', 'default_layer', 'plot_generalization', 'plot_layer_analysis',
           'check_sets', 'extract_features', 'extract_set_features', 'hr_patch_sets', 'lr_patch_sets',
           'parse_set_dirs', 'default_perplexity', 'pca_reduce', 'tsne_runs', 'cluster_scores', 'mean_std',
           'score_runs']
