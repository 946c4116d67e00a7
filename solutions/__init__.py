"""Reference solutions for the warblr lab (what a strong student would write).

The four modules mirror ``exercises/`` exactly: ``resampling``, ``logmel``,
``embedding`` and ``classify``. They use plain numpy, scipy, torch and
scikit-learn and never import ``warblr``.
"""
