"""emjax.sklearn.network.BayesianNetwork (named variables): query() against brute-force
enumeration of the joint in NumPy (from the fitted CPTs), the fit against the index-based
emjax.BayesianNetwork with the same key, the three data forms (DataFrame, dict of columns,
structured array) against each other, and errors that name the variable."""
import itertools

import jax
import numpy as np
import pytest

import emjax
from emjax.sklearn.network import BayesianNetwork

pd = pytest.importorskip("pandas")

CARDS = {"Z": 2, "radius": 3, "texture": 2, "label": 2}
STRUCTURE = {"radius": "Z", "texture": ["Z"], "label": ["Z", "radius"]}
NAMES = list(CARDS)


def generated_frame(n=300, seed=0):
    """Rows from a network with a latent Z (NumPy), about 15% of observed values missing (NaN)."""
    rng = np.random.default_rng(seed)
    z = rng.integers(2, size=n)
    radius = np.where(z == 0, rng.choice(3, size=n, p=[0.7, 0.2, 0.1]), rng.choice(3, size=n, p=[0.1, 0.3, 0.6]))
    texture = (rng.random(n) < np.where(z == 0, 0.2, 0.8)).astype(int)
    label = (rng.random(n) < 0.1 + 0.25 * radius + 0.2 * z).astype(int)
    frame = pd.DataFrame({"radius": radius, "texture": texture, "label": label}).astype(float)
    frame = frame.mask(rng.random(frame.shape) < 0.15)
    return frame


def brute_force_query(cpds, parents, query, evidence):
    """p(query | evidence) by enumerating every complete assignment (NumPy)."""
    table = np.zeros([CARDS[v] for v in query])
    for values in itertools.product(*(range(CARDS[v]) for v in NAMES)):
        x = dict(zip(NAMES, values))
        if any(x[v] != e for v, e in evidence.items()):
            continue
        p = np.prod([cpds[v][tuple(x[u] for u in parents[v]) + (x[v],)] for v in NAMES])
        table[tuple(x[v] for v in query)] += p
    return table / table.sum()


@pytest.fixture(scope="module")
def fitted():
    return BayesianNetwork(STRUCTURE, CARDS, latent=["Z"], random_state=0, max_iter=50).fit(generated_frame())


@pytest.mark.slow
@pytest.mark.parametrize("query, evidence", [
    (["Z"], {"radius": 2}), (["label", "Z"], {"texture": 0}), ("radius", {}),
    (["radius", "label"], {"Z": 1, "texture": 1}), (["Z", "texture", "label"], {"radius": 0}),
])
def test_query_matches_brute_force_enumeration(fitted, query, evidence):
    got = fitted.query(query, evidence)
    want = brute_force_query(fitted.cpds_, fitted.parents_, [query] if isinstance(query, str) else query,
                             evidence)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_named_fit_equals_index_fit_and_data_forms_agree(fitted):
    frame = generated_frame()
    assert fitted.variables_ == NAMES and fitted.parents_["label"] == ("Z", "radius")
    data = np.stack([np.full(len(frame), -1)] + [frame[c].fillna(-1).to_numpy(int) for c in NAMES[1:]], axis=1)
    engine = emjax.BayesianNetwork({1: 0, 2: [0], 3: [0, 1]}, (2, 3, 2, 2), latent=[0])
    result = emjax.fit(engine, data, jax.random.key(0), max_iter=50, throw=False)
    for v, table in zip(NAMES, result.params.tables):
        np.testing.assert_allclose(fitted.cpds_[v], table, rtol=1e-6)
    columns = {c: [None if np.isnan(x) else int(x) for x in frame[c]] for c in frame.columns}
    from_dict = BayesianNetwork(STRUCTURE, CARDS, latent=["Z"], random_state=0, max_iter=50).fit(columns)
    records = np.array(list(zip(*(frame[c].fillna(-1).to_numpy(int) for c in frame.columns))),
                       dtype=[(c, int) for c in frame.columns])
    from_records = BayesianNetwork(STRUCTURE, CARDS, latent=["Z"], random_state=0, max_iter=50).fit(records)
    for other in (from_dict, from_records):
        for v in NAMES:
            np.testing.assert_allclose(other.cpds_[v], fitted.cpds_[v], rtol=1e-6)
    assert fitted.score(frame) == pytest.approx(float(np.sum(engine.log_prob(result.params, data))), rel=1e-5)


def test_cardinalities_inferred_and_errors_name_the_variable(fitted):
    frame = generated_frame(60)
    inferred = BayesianNetwork({"label": ["radius"]}, random_state=0).fit(frame)
    assert inferred.cardinalities_ == {"label": 2, "radius": 3, "texture": 2}
    with pytest.raises(ValueError, match="'Z' has no cardinality"):
        BayesianNetwork(STRUCTURE, latent=["Z"]).fit(frame)
    with pytest.raises(ValueError, match="'colour', which is not a variable"):
        fitted.query(["Z"], {"colour": 1})
    with pytest.raises(ValueError, match=r"evidence\['radius'\] must be an integer code in 0..2"):
        fitted.query(["Z"], {"radius": 3})
    with pytest.raises(ValueError, match="'Z' twice or also in evidence"):
        fitted.query(["Z"], {"Z": 1})
    with pytest.raises(ValueError, match="column 'radius' row 0 is 5"):
        BayesianNetwork(STRUCTURE, CARDS, latent=["Z"]).fit({"radius": [5, 1], "texture": [0, 1], "label": [0, 1]})
