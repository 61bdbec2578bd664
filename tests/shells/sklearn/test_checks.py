"""scikit-learn's own estimator checks over emjax.sklearn's mixtures (default instances).

Each estimator compiles one program per feature count and dtype the checks use (rows are padded
to a few bucket sizes, so checks share programs: emjax/sklearn/row_buckets.py). Compiling is
nearly all of this module's time; ``make test`` runs it (the README's test command, as issue 16
asks) with the rest of the fast lane, compiled with XLA's optimisations mostly off.
"""
from sklearn.utils.estimator_checks import parametrize_with_checks

from emjax.sklearn import BayesianGaussianMixture, GaussianMixture


def expected_failed_checks(estimator):
    if isinstance(estimator, BayesianGaussianMixture):
        return {"check_sample_weight_equivalence_on_dense_data":
                "15 rows of 30 features: the default covariance_prior (the data's covariance) is "
                "singular, and without reg_covar (0 here; scikit-learn adds 1e-6) the fit is "
                "refused with a ValueError that says so"}
    return {}


@parametrize_with_checks([GaussianMixture(), BayesianGaussianMixture()],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
