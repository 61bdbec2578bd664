"""Every documented HMM data form under jit, vmap over datasets, grad and jvp (issue 15 item 3,
finding F8): ``(s, t, d)`` arrays, ``(x, lengths)`` tuples, ``[x, lengths]`` lists, one ``(t, d)``
sequence and :class:`emjax.Sequences` give the untransformed fit's results; a gradient entry is
checked against central finite differences of converged fits at float64."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax

KEY = jax.random.key(0)
LENGTHS = np.array([12, 9, 12])
OPTIONS = dict(max_iter=8, tol=0.0, throw=False)
MODELS = {
    "gaussian": emjax.GaussianHMM(2, covariance_type="diag"),
    "poisson": emjax.PoissonHMM(2),
}


def sequences(kind, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        states = (np.arange(12)[None, :] // 4 + np.arange(3)[:, None]) % 2
        return (rng.normal(size=(3, 12, 2)) + 3.0 * states[..., None]).astype(dtype)
    return rng.poisson(np.where(rng.random((3, 12, 2)) < 0.5, 1.0, 6.0)).astype(dtype)


# each form: x (s, t, d) -> data (traceable in x), and the same rows as plain Sequences (the
# form that always worked: the untransformed reference)
FORMS = {
    "array": (lambda x: x, lambda x: emjax.Sequences(x, np.full(3, 12))),
    "tuple": (lambda x: (x, LENGTHS), lambda x: emjax.Sequences(x, LENGTHS)),
    "list": (lambda x: [x, LENGTHS], lambda x: emjax.Sequences(x, LENGTHS)),
    "sequences": (lambda x: emjax.Sequences(x, LENGTHS), lambda x: emjax.Sequences(x, LENGTHS)),
    "one_sequence": (lambda x: x[0], lambda x: emjax.Sequences(x[:1], np.array([12]))),
}
TRANSFORMS = ("jit", "vmap", "grad", "jvp")
FAST = {("gaussian", "tuple", "jit"), ("gaussian", "tuple", "grad")}  # the F8 reproducers


def close(a, b, rtol=1e-4, atol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def check_transform(kind, form, transform):
    model, (make, plain), x = MODELS[kind], FORMS[form], sequences(kind)
    fit = lambda v: emjax.fit(model, make(v), KEY, **OPTIONS)
    ref = emjax.fit(model, plain(x), KEY, **OPTIONS)
    if form != "sequences":  # Sequences is the reference form itself
        close(fit(x).objective, ref.objective)
    if transform == "jit":
        jitted = jax.jit(fit)(jnp.asarray(x))
        close(jitted.objective, ref.objective)
        close(jitted.params.transitions, ref.params.transitions)
    elif transform == "vmap":
        other = sequences(kind, seed=1)
        batched = jax.vmap(lambda v: fit(v).objective)(jnp.stack([jnp.asarray(x), jnp.asarray(other)]))
        close(batched, [ref.objective, emjax.fit(model, plain(other), KEY, **OPTIONS).objective])
    else:
        grad = jax.grad(lambda v: fit(v).objective)(jnp.asarray(x))
        assert grad.shape == x.shape and np.isfinite(np.asarray(grad)).all()
        if form in ("tuple", "list", "sequences"):  # padded steps do not enter the fit
            assert np.all(np.asarray(grad)[1, LENGTHS[1]:] == 0)
        if transform == "jvp":
            direction = jnp.asarray(np.random.default_rng(2).normal(size=x.shape).astype(x.dtype))
            value, tangent = jax.jvp(lambda v: fit(v).objective, (jnp.asarray(x),), (direction,))
            close(value, ref.objective)
            close(tangent, jnp.sum(grad * direction), rtol=1e-3, atol=1e-4)


CASES = [(k, f, t) for k in MODELS for f in FORMS for t in TRANSFORMS]


@pytest.mark.slow
@pytest.mark.parametrize("kind, form, transform", sorted(FAST))
def test_transformed_fit_accepts_the_form(kind, form, transform):
    check_transform(kind, form, transform)


@pytest.mark.slow
@pytest.mark.parametrize("kind, form, transform", [c for c in CASES if c not in FAST])
def test_every_form_under_every_transformation(kind, form, transform):
    check_transform(kind, form, transform)


@pytest.mark.parametrize("form", [pytest.param("array", marks=pytest.mark.slow), "tuple"])
def test_em_under_grad_accepts_arrays_and_tuples(form):
    model, make, x = MODELS["gaussian"], FORMS[form][0], sequences("gaussian")
    start = emjax.fit(model, make(x), KEY, max_iter=1, throw=False).params
    run = lambda v: emjax.em(model, start, make(v), max_iter=5, tol=0.0, throw=False).objective
    grad = jax.grad(run)(jnp.asarray(x))
    assert np.isfinite(np.asarray(grad)).all()
    close(jax.jit(run)(jnp.asarray(x)), run(x))


@pytest.mark.slow
@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("form", ["array", "tuple"])
def test_gradient_entry_matches_finite_differences(x64, kind, form):
    """d objective / d x[0, 3, 1] of a converged fit against a central difference (float64;
    jitted, so Poisson counts may move off the integers as the derivative requires)."""
    model, make, x = MODELS[kind], FORMS[form][0], sequences(kind, dtype=np.float64)
    objective = jax.jit(lambda v: emjax.fit(model, make(v), KEY, max_iter=2000, tol=1e-13,
                                            throw=False).objective)
    grad = jax.grad(objective)(jnp.asarray(x))
    h, bump = 1e-4, np.zeros_like(x)
    bump[0, 3, 1] = 1.0
    numeric = (float(objective(x + h * bump)) - float(objective(x - h * bump))) / (2 * h)
    np.testing.assert_allclose(float(grad[0, 3, 1]), numeric, rtol=1e-4, atol=1e-7)
