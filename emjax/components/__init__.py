"""Emission components shared by mixtures and HMMs: pure functions per family, and the
:class:`~emjax.components.emission.Emission` protocol with its families (``emissions_*.py``)."""

#: Default pseudo-count ``c`` (in observations) of the conjugate priors the models put on their
#: parameters: Dirichlet(1 + c) on weights, transition rows and categorical probabilities,
#: Beta(1 + c, 1 + c), Gamma(1 + c, c), and the Gaussian MAP prior's strength.
PSEUDO_COUNT = 1e-3
