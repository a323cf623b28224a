"""FAIG: find the conv filters of a blind-SR network that are specific to one degradation.

``filters`` numbers every ``nn.Conv2d`` filter of any module; ``attribution`` ranks them (FAIG, IG,
|theta - theta_bar|, random); ``masking`` copies the baseline's filters into the target at the top
locations and measures PSNR; ``prediction`` tells the degradation of an unseen input from the
activations of the discovered filters. Xie et al., "Finding Discriminative Filters for Specific
Degradations in Blind Super-Resolution", NeurIPS 2021.

    ranking = attribute(baseline, target, hr, deg='blur2', vs='noise20', method='faig', steps=100)
    masked = mask(baseline, target, ranking, percent=1, which='deg')
    labels = predict(target, ranking, lq, fit_lq, clean_lq, percent=1)
"""
from .attribution import METHODS, absdiff_scores, attribute, faig_scores, ig_scores, random_scores
from .filters import FilterIndex, check_same_architecture
from .masking import mask, mask_filters, masking_table
from .prediction import DegradationPredictor, filter_activations, predict, prediction_accuracy
from .ranking import Ranking, layer_counts

__all__ = ['METHODS', 'absdiff_scores', 'attribute', 'faig_scores', 'ig_scores', 'random_scores', 'FilterIndex',
           'check_same_architecture', 'mask', 'mask_filters', 'masking_table', 'DegradationPredictor',
           'filter_activations', 'predict', 'prediction_accuracy', 'Ranking', 'layer_counts']
