"""The models: :mod:`~fastmf.models.base` (the Recommender interface every model implements),
:mod:`~fastmf.models.baselines` (GlobalMean, Biases, Popularity), :mod:`~fastmf.models.mf`
(MatrixFactorization by SGD or ALS) and :mod:`~fastmf.models.implicit` (ImplicitALS)."""
