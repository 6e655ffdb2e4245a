"""Probabilistic customer lifetime value: BG/NBD (purchases and dropout) and Gamma-Gamma
(spend per purchase), fitted by maximum likelihood with numpy and scipy.

The models, their assumptions and references are in docs/plugins/analytical.md
("Probabilistic lifetime value"). Notation of the papers:

- ``x``: repeat purchases (purchase occasions after the first) in the observation period,
- ``t_x``: time of the last purchase, counted from the first,
- ``T``: time from the first purchase to the end of the observation period (``as_of``),
- ``zbar``: the mean value of the repeat purchases.

Times are in any unit, the same for all three (the warehouse uses weeks, as the papers).

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy way:
an alternative to the Pareto/NBD model. Marketing Science 24(2), 275-284.
Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary value.
http://brucehardie.com/notes/025/
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import optimize, special

from clientela.core.errors import ValidationError

#: fewest customers with a repeat purchase for a fit to mean anything
MIN_REPEAT_CUSTOMERS = 5


class NotEnoughData(ValidationError):
    """Too few customers (or repeat purchases) in the warehouse to fit the model."""

    def __init__(self, message: str):
        super().__init__({"method": [message]}, message=message)


def _arrays(*columns) -> list[np.ndarray]:
    return [np.asarray(c, dtype=float) for c in columns]


def _compress(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of the columns and how often each occurs (the likelihood is a sum of
    identical terms for customers with the same figures: a large speed-up at scale)."""
    stacked = np.column_stack(columns)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(float)


def _minimise(negative_ll, start: np.ndarray, with_gradient: bool = False, per: float = 1.0
              ) -> tuple[np.ndarray, float, bool]:
    """Minimise over log-parameters (all parameters are positive) with L-BFGS-B, tight
    tolerances; Nelder-Mead from there only when it reports no convergence.

    ``with_gradient``: ``negative_ll`` returns ``(value, gradient)`` (a fraction of the
    evaluations finite differences need). ``per``: minimise the value divided by this (the
    number of customers), so that the absolute gradient tolerance means the same for a
    thousand customers and for a million: summed over a million, the gradient never gets
    below it, L-BFGS-B reports no convergence and the slow Nelder-Mead runs instead.
    """
    if with_gradient:
        def objective(v):
            value, grad = negative_ll(v)
            return value / per, grad / per
    else:
        def objective(v):
            return negative_ll(v) / per
    best = optimize.minimize(objective, np.log(start), method="L-BFGS-B", jac=with_gradient,
                             options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    converged = bool(best.success)
    if not converged:
        value_only = (lambda v: objective(v)[0]) if with_gradient else objective
        polish = optimize.minimize(value_only, best.x, method="Nelder-Mead",
                                   options={"maxiter": 20000, "xatol": 1e-10, "fatol": 1e-10})
        converged = bool(polish.success)
        if polish.fun <= best.fun:
            best = polish
    return np.exp(best.x), float(best.fun) * per, converged


# --- BG/NBD --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BetaGeoFit:
    """A fitted BG/NBD model: purchase rates ~ Gamma(r, alpha), dropout p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    converged: bool

    def params(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    def _odds_dead(self, x, t_x, T) -> np.ndarray:
        """a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x), 0 without repeats."""
        x, t_x, T = _arrays(x, t_x, T)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = (np.log(a) - np.log(np.where(x > 0, b + x - 1, 1.0))
                        + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
        return np.where(x > 0, np.exp(log_odds), 0.0)

    def p_alive(self, x, t_x, T) -> np.ndarray:
        """P(the customer is still active at T | x, t_x, T) (FHL 2005, eq. 13 / note 021)."""
        return 1.0 / (1.0 + self._odds_dead(x, t_x, T))

    def p_no_purchase(self, t, x, t_x, T) -> np.ndarray:
        """P(no purchase in (T, T + t] | x, t_x, T): dead, or alive and silent for t.

        Alive at T, the purchase rate's posterior is Gamma(r + x, alpha + T), and a dropout
        happens only after a purchase, so P(silent | alive) = ((alpha + T) / (alpha + T + t))
        ^ (r + x). This is the BG/NBD churn score: unlike 1 - P(alive), it also counts a
        customer without a repeat purchase (whom the model cannot see drop out) as likely
        to stay away.
        """
        x, t_x, T = _arrays(x, t_x, T)
        t = np.asarray(t, dtype=float)
        silent = ((self.alpha + T) / (self.alpha + T + t)) ** (self.r + x)
        return 1.0 - self.p_alive(x, t_x, T) * (1.0 - silent)

    def expected_purchases(self, t, x, t_x, T) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, eq. 10)."""
        x, t_x, T = _arrays(x, t_x, T)
        t = np.asarray(t, dtype=float)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + T + t)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        head = (a + b + x - 1) / (a - 1)
        body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp
        return head * body / (1 + self._odds_dead(x, t_x, T))

    def expected_purchases_new(self, t) -> np.ndarray:
        """E[X(t)] for a customer just acquired (FHL 2005, eq. 9)."""
        t = np.asarray(t, dtype=float)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + t)
        hyp = special.hyp2f1(r, b, a + b - 1, z)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp)


def bgnbd_log_likelihood(params, x, t_x, T, weights=None) -> float:
    """The BG/NBD log-likelihood of the data (FHL 2005, eq. 6), summed over customers."""
    r, alpha, a, b = params
    x, t_x, T = _arrays(x, t_x, T)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = (special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b)
          - special.gammaln(a + b + x))
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.where(x > 0, b + x - 1, 1.0))
                      - (r + x) * np.log(alpha + t_x), -np.inf)
    terms = a1 + a2 + np.logaddexp(a3, a4)
    return float(np.sum(terms if weights is None else terms * weights))


class _BgnbdData:
    """The BG/NBD data prepared once for the many evaluations of a fit.

    Same value as ``bgnbd_log_likelihood``, computed in less time: the gamma-function
    terms depend on ``x`` alone and are evaluated once per distinct ``x``; customers
    without a repeat purchase contribute ``-r log(alpha + T)`` only, summed per distinct
    ``T``; only repeat buyers need a per-customer ``logaddexp``.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
        (cx, ct, cT), w = _compress(x, t_x, T)
        self.ux, x_index = np.unique(cx, return_inverse=True)
        self.wx = np.bincount(x_index, weights=w)
        self.uT, T_index = np.unique(cT, return_inverse=True)
        once = cx == 0
        self.w0_by_T = np.bincount(T_index[once], weights=w[once], minlength=len(self.uT))
        rep = ~once
        self.xr, self.wr = cx[rep], w[rep]
        self.xr_index, self.Tr_index = x_index[rep], T_index[rep]
        self.ut, tr_index = np.unique(ct[rep], return_inverse=True)
        self.tr_index = tr_index

    def log_likelihood(self, r: float, alpha: float, a: float, b: float
                       ) -> tuple[float, np.ndarray]:
        """The log-likelihood and its gradient in (r, alpha, a, b)."""
        # an optimiser's step may overflow; the caller maps a non-finite value to "worst"
        with np.errstate(all="ignore"):
            return self._log_likelihood(r, alpha, a, b)

    def _log_likelihood(self, r: float, alpha: float, a: float, b: float
                        ) -> tuple[float, np.ndarray]:
        ux, wx = self.ux, self.wx
        per_x = (special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha)
                 + special.gammaln(a + b) + special.gammaln(b + ux) - special.gammaln(b)
                 - special.gammaln(a + b + ux))
        psi_ab_x = special.digamma(a + b + ux)
        grad = np.array([
            np.dot(wx, special.digamma(r + ux) - special.digamma(r) + np.log(alpha)),
            r / alpha * wx.sum(),
            np.dot(wx, special.digamma(a + b) - psi_ab_x),
            np.dot(wx, special.digamma(a + b) + special.digamma(b + ux) - special.digamma(b)
                   - psi_ab_x)])
        log_T = np.log(alpha + self.uT)
        # one-time buyers: -r log(alpha + T)
        total = float(np.dot(wx, per_x)) - r * float(np.dot(self.w0_by_T, log_T))
        grad[0] -= np.dot(self.w0_by_T, log_T)
        grad[1] -= r * np.dot(self.w0_by_T, 1 / (alpha + self.uT))
        if len(self.xr):
            # repeat buyers: log(exp(a3) + exp(a4)); its derivative weighs a3's and a4's
            # by their shares of the sum
            log_b = np.log(b + ux - 1)  # only read for x > 0
            power = r + self.xr
            log_t = np.log(alpha + self.ut)[self.tr_index]
            log_Tr = log_T[self.Tr_index]
            a3 = -power * log_Tr
            a4 = np.log(a) - log_b[self.xr_index] - power * log_t
            both = np.logaddexp(a3, a4)
            total += float(np.dot(self.wr, both))
            w4 = self.wr * np.exp(a4 - both)
            w3 = self.wr - w4
            grad[0] -= np.dot(w3, log_Tr) + np.dot(w4, log_t)
            grad[1] -= (np.dot(w3 * power, 1 / (alpha + self.uT)[self.Tr_index])
                        + np.dot(w4 * power, 1 / (alpha + self.ut)[self.tr_index]))
            grad[2] += w4.sum() / a
            grad[3] -= np.dot(w4, 1 / (b + self.xr - 1))
        return total, grad


def fit_bgnbd(x, t_x, T) -> BetaGeoFit:
    """Maximum-likelihood estimates of r, alpha, a, b from per-customer (x, t_x, T)."""
    x, t_x, T = _arrays(x, t_x, T)
    if len(x) == 0 or np.count_nonzero(x > 0) < MIN_REPEAT_CUSTOMERS:
        raise NotEnoughData(f"BG/NBD needs at least {MIN_REPEAT_CUSTOMERS} customers with a "
                            "repeat purchase")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(T < t_x):
        raise ValueError("need x >= 0 and 0 <= t_x <= T")
    data = _BgnbdData(x, t_x, T)
    scale = float(np.mean(T)) or 1.0

    def negative(log_params):
        params = np.exp(log_params)
        value, grad = data.log_likelihood(*params)
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return 1e300, np.zeros(4)
        return -value, -grad * params  # the chain rule for log-parameters

    start = np.array([1.0, scale, 1.0, 1.0])
    (r, alpha, a, b), nll, ok = _minimise(negative, start, with_gradient=True,
                                          per=float(len(x)))
    return BetaGeoFit(float(r), float(alpha), float(a), float(b), -nll, len(x), ok)


# --- Gamma-Gamma ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GammaGammaFit:
    """A fitted Gamma-Gamma spend model: z ~ Gamma(p, nu), nu ~ Gamma(q, gamma)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    customers: int
    converged: bool

    def params(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}

    def mean_spend(self) -> float:
        """E[Z] for a customer we know nothing of: p gamma / (q - 1) (infinite if q <= 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("inf")

    def expected_spend(self, x, zbar) -> np.ndarray:
        """E[Z | x, zbar] = (gamma + x zbar) p / (p x + q - 1) (note 025, eq. 5): a weighted
        mean of the population mean and the customer's own (zbar is ignored when x = 0)."""
        x, zbar = _arrays(x, zbar)
        zbar = np.where(x > 0, zbar, 0.0)
        return (self.gamma + x * zbar) * self.p / (self.p * x + self.q - 1)


def gamma_gamma_log_likelihood(params, x, zbar, weights=None) -> float:
    """The Gamma-Gamma log-likelihood of the customers' mean spends (note 025, eq. 3)."""
    p, q, gamma = params
    x, zbar = _arrays(x, zbar)
    terms = (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q)
             + q * np.log(gamma) + (p * x - 1) * np.log(zbar) + p * x * np.log(x)
             - (p * x + q) * np.log(gamma + x * zbar))
    return float(np.sum(terms if weights is None else terms * weights))


class _GammaGammaData:
    """The Gamma-Gamma data prepared once for a fit: the same per-customer terms as
    ``gamma_gamma_log_likelihood`` (summed in the same order, so the fit is the same to the
    last bit: the likelihood is flat along a ridge), with the gamma functions evaluated
    once per distinct ``x`` and the parameter-free logarithms computed once."""

    def __init__(self, x: np.ndarray, zbar: np.ndarray):
        (self.x, self.zbar), self.weights = _compress(x, zbar)
        self.ux, self.x_index = np.unique(self.x, return_inverse=True)
        self.log_z, self.log_x = np.log(self.zbar), np.log(self.x)
        self.xz = self.x * self.zbar

    def log_likelihood(self, p: float, q: float, gamma: float) -> float:
        with np.errstate(all="ignore"):
            x = self.x
            per_x = special.gammaln(p * self.ux + q) - special.gammaln(p * self.ux)
            terms = (per_x[self.x_index] - special.gammaln(q) + q * np.log(gamma)
                     + (p * x - 1) * self.log_z + p * x * self.log_x
                     - (p * x + q) * np.log(gamma + self.xz))
            return float(np.sum(terms * self.weights))


def fit_gamma_gamma(x, zbar) -> GammaGammaFit:
    """Maximum-likelihood p, q, gamma from the customers with a repeat purchase (x > 0)."""
    x, zbar = _arrays(x, zbar)
    keep = (x > 0) & (zbar > 0)
    x, zbar = x[keep], zbar[keep]
    if len(x) < MIN_REPEAT_CUSTOMERS:
        raise NotEnoughData(f"Gamma-Gamma needs at least {MIN_REPEAT_CUSTOMERS} customers "
                            "with a repeat purchase of positive value")
    data = _GammaGammaData(x, zbar)
    scale = float(np.mean(zbar))

    def negative(log_params):
        value = -data.log_likelihood(*np.exp(log_params))
        return value if np.isfinite(value) else 1e300

    (p, q, gamma), nll, ok = _minimise(negative, np.array([1.0, 2.0, scale]))
    return GammaGammaFit(float(p), float(q), float(gamma), -nll, len(x), ok)


# --- lifetime value ------------------------------------------------------------------------


WEEKS_PER_MONTH = 52.1775 / 12


def lifetime_value(bg: BetaGeoFit, gg: GammaGammaFit, x, t_x, T, zbar, *,
                   months: int = 36, annual_discount: float = 0.1, margin: float = 1.0,
                   weeks_per_unit: float = 1.0) -> np.ndarray:
    """Discounted expected value of each customer's purchases over the next ``months``.

    CLV = margin x E[spend] x sum over months m of
          (E[purchases by the end of m] - E[purchases by the end of m - 1]) / (1 + d)^m,
    with d the monthly rate equivalent to ``annual_discount``. ``weeks_per_unit``: the
    length of the model's time unit in weeks (1 when t_x and T are in weeks).
    """
    x, t_x, T, zbar = _arrays(x, t_x, T, zbar)
    monthly = (1 + annual_discount) ** (1 / 12) - 1
    unit = WEEKS_PER_MONTH / weeks_per_unit
    value = np.zeros_like(x)
    previous = np.zeros_like(x)
    for m in range(1, months + 1):
        cumulative = bg.expected_purchases(m * unit, x, t_x, T)
        value += (cumulative - previous) / (1 + monthly) ** m
        previous = cumulative
    return margin * gg.expected_spend(x, zbar) * value


def summary(bg: BetaGeoFit | None, gg: GammaGammaFit | None) -> dict[str, Any]:
    """The fits' parameters and log-likelihoods, for the API."""
    out: dict[str, Any] = {}
    if bg is not None:
        out["bgnbd"] = {**bg.params(), "log_likelihood": bg.log_likelihood,
                        "customers": bg.customers, "converged": bg.converged}
    if gg is not None:
        out["gamma_gamma"] = {**gg.params(), "log_likelihood": gg.log_likelihood,
                              "customers": gg.customers, "converged": gg.converged}
    return out
