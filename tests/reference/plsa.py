"""A dense NumPy PLSA step: posteriors q_dwz = (theta_dz phi_zw)^beta / sum_z' (...), statistics
n_dz = sum_w c_dw q_dwz and n_zw = sum_d c_dw q_dwz, MAP updates under Dirichlet(1 + a) priors, and
the tempered objective of the new parameters per unit of weight of the non-zero entries."""
import numpy as np
from scipy.special import logsumexp


def reference_step(counts, w, theta, phi, a, beta):
    """One tempered MAP-EM step on dense counts; ``w`` weights each (doc, word) entry."""
    seen = counts > 0  # only non-zero entries enter (a word may have P(w | z) = 0 when a = 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        joint = beta * (np.log(theta)[:, :, None] + np.log(phi)[None])  # (D, K, V)
        q = np.where(seen[:, None], np.exp(joint - logsumexp(joint, axis=1, keepdims=True)), 0)
        mass = (w * counts)[:, None, :]
        n_dz, n_zw = (q * mass).sum(2), (q * mass).sum(0)
        new_theta = (n_dz + a) / (n_dz + a).sum(1, keepdims=True)
        new_phi = (n_zw + a) / (n_zw + a).sum(1, keepdims=True)
        new_joint = beta * (np.log(new_theta)[:, :, None] + np.log(new_phi)[None])
        ll = (w * counts * logsumexp(new_joint, axis=1) / beta)[seen].sum()
    prior = a * (np.log(new_theta).sum() + np.log(new_phi).sum()) if a else 0.0
    return new_theta, new_phi, (ll + prior) / w[counts > 0].sum()
