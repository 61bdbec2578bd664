"""Model selection: information criteria and the K x covariance sweep
(:func:`emjax.select`). The one layer above both the models and the engine."""
