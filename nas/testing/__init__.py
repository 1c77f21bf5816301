"""What a plugin's own test suite runs to show it behaves as ``nas`` expects (needs pytest).

- :mod:`nas.testing.space_conformance`: subclass ``SearchSpaceConformance`` (or call
  ``check_space``) to check a search space's protocol, operators, JSON and decoder;
- :mod:`nas.testing.strategy_conformance`: ``CHECKS``, each called with a strategy's
  registered name, checks it on a toy problem without training;
- :mod:`nas.testing.toy_space`: a real-vector space (``VectorSpace``, ``zdt1``) for
  searches that train nothing, also usable by name (``space = "nas.testing.toy_space"``).

They are the suites this project's own tests run on its spaces and strategies.
"""
