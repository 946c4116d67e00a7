"""The warblr lab: your code goes in the four modules of this package.

Work through them in order: ``resampling`` (mono, 16 kHz), ``logmel`` (the
VGGish log-mel front end), ``embedding`` (the VGGish network, batched
inference, PCA postprocessing) and ``classify`` (clip features, PCA +
logistic regression, cross-validated ROC AUC). Replace each
``raise NotImplementedError`` with your implementation and keep the
function names and signatures: the graded checks call them.

Check your work with ``pytest exercises`` (the ``test_*.py`` files here are
the graded checks; read a failing check's hint first).
"""
