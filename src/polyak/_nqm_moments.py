"""Exact second moments of the noisy quadratic model, per direction and summed into the loss.

Every direction follows a second-order linear recurrence θ_{t+1} = A θ_t − P θ_{t−1} − ξ_t with
θ_{−1} = θ_0 and independent noise ξ_t of variance σ²: heavy ball has A = 1 + β − x, P = β; the
iterate average of SGD (β = 0) is the same recurrence for θ̄ with A = d + 1 − x, P = d(1 − x)
and noise (1 − d)² σ² (see :mod:`polyak.nqm`). With r₁, r₂ the roots of μ² − Aμ + P = 0 and
ψ_k = (r₁^{k+1} − r₂^{k+1})/(r₁ − r₂) (ψ_{−1} = 0, ψ₀ = 1, ψ_{k+1} = Aψ_k − Pψ_{k−1}),

    θ_t = φ_t θ₀ + Σ_{j<t} ψ_{t−1−j} ξ_j,   φ_t = ψ_t − Pψ_{t−1} = (1 − r₂) ψ_t + r₂^{t+1},
    E[θ_t²] = s0 φ_t² + σ² S_t,   S_t = Σ_{k<t} ψ_k².

Powers are exp(t · log) with every log taken from a distance to 1 that the parameters give
without cancellation (log r₁ = log1p(−X/(1 − r₂)), log ρ = log1p(−(r₁ − r₂)/r₁), ...), so t up to
2⁵³ keeps the relative accuracy of the logs; complex roots √P e^{±iω} use ψ_k = P^{k/2}
sin((k+1)ω)/sin ω. A double root is exact (ρ = 1 gives [m]_ρ = m). S_t three ways, each exact,
with an a-posteriori rounding-error estimate; per element the smallest estimate wins:

- the tail form (Yule–Walker): S_t = γ₀ − [γ₀(ψ_t² + P²ψ_{t−1}²) − 2Pγ₁ψ_tψ_{t−1}] with
  γ₀ = S_∞ = (1 + P)/((1 − P) X Y), γ₁ = A γ₀/(1 + P), X = (1 − r₁)(1 − r₂),
  Y = (1 + r₁)(1 + r₂). It cancels while t is short of the decay time, and near a double root
  (where the quadratic form is nearly singular) for longer.
- the direct sum: real roots, ρ = r₂/r₁: S_t = ([t]_{r₁²} − 2ρ[t]_{P} + ρ²[t]_{r₂²})/(1 − ρ)²;
  complex roots: S_t = ([t]_P − Re(e^{2iω}[t]_{Pe^{2iω}}))/(2 sin²ω), with
  [t]_z = (1 − z^t)/(1 − z) = expm1(t log z)/expm1(log z). It cancels near a double root
  (t |1 − ρ| small).
- where both cancel (a double root near 1: β near 1, x near (1 − √β)²), the divided
  differences S_t = f[r₁², r₂²] + 2P f[r₁², r₂², P] of f(z) = Σ_{k=1}^t z^k by binary doubling
  of the bidiagonal (Opitz) matrix, O(log t): for real roots no term is negative, nothing cancels.

Checked against 60-digit references: relative error of S_t ~1e-15 over x from 1e-12 to the
stability edge, β up to 1 − 1e-7, double roots, t up to 1e12.
"""

from dataclasses import dataclass, fields

import numpy as np

from polyak._nqm_model import query
from polyak._validation import finite_real_array

EPS = np.finfo(np.float64).eps
#: log 0, finite so that 0 · log 0 = 0 (z⁰ = 1) and t · log 0 underflows to exp(…) = 0 for t ≤ 2⁵³.
LOG_ZERO = -1e290
#: Rounding allowance of a few operations, in units of EPS (the error estimates' constant).
ROUNDING = 8.0


def _log(value):
    """log of a nonnegative array, LOG_ZERO for 0."""
    with np.errstate(divide="ignore", invalid="ignore"):  # callers mask what is not a root's
        return np.maximum(np.log(value), LOG_ZERO)


def _log1p_neg(u):
    """log(1 − u) for u <= 1 (LOG_ZERO at u = 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(np.log1p(-u), LOG_ZERO)


def _two_sum(a, b, low=0.0):
    """(s, e) with s = fl(a + b) and s + e = a + b + low (Knuth; `low`: a's low part, added to e)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb) + low


def _two_product(a, b):
    """(p, e) with p = fl(a·b) and p + e = a·b exactly (Dekker's split, |a|, |b| < 1e300)."""
    p = a * b
    a_high = 134217729.0 * a
    a_high = a_high - (a_high - a)
    b_high = 134217729.0 * b
    b_high = b_high - (b_high - b)
    a_low, b_low = a - a_high, b - b_high
    return p, ((a_high * b_high - p) + a_high * b_low + a_low * b_high) + a_low * b_low


def _odd(t):
    return np.fmod(t, 2.0) == 1.0


@dataclass
class Recurrence:
    """The roots of μ² − Aμ + P = 0 of many elements (flat arrays), described for accurate powers.

    Real roots (``osc`` False): r₁ = s₁ e^{L₁} (the larger in modulus), r₂ = s₂ e^{L₂},
    ρ = r₂/r₁ = s₁s₂ e^{Lρ}; ``one_minus_r2`` = 1 − r₂. Complex roots (``osc`` True):
    s₁√P e^{±iω}, ω in (0, π/2], s₁ the sign of A, with ``Lm`` = ½ log P, ``cot`` = cot ω and
    ``cchi`` = s₁(A − 2P)/√(4P − A²) (so that φ_t = s₁^t P^{t/2}(cos tω + cchi · sin tω)). X = (1 − r₁)(1 − r₂), Y = (1 + r₁)(1 + r₂) are computed
    without cancellation from the parameters; ``radius`` is max |r|; ``scale`` multiplies σ².
    """

    A: np.ndarray
    P: np.ndarray
    one_minus_P: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    osc: np.ndarray
    L1: np.ndarray
    L2: np.ndarray
    Lrho: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    one_minus_r2: np.ndarray
    Lm: np.ndarray
    omega: np.ndarray
    cot: np.ndarray
    cchi: np.ndarray
    radius: np.ndarray
    scale: np.ndarray
    gamma0: np.ndarray = None
    cross: np.ndarray = None
    stable: np.ndarray = None

    def __post_init__(self):
        if self.gamma0 is None:
            self.stable = self.radius < 1
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                self.gamma0 = (1 + self.P) / (self.one_minus_P * self.X * self.Y)  # S_∞ = Σ ψ_k²
                self.cross = 2 * self.P * self.A / (1 + self.P)  # 2Pγ₁/γ₀

    @classmethod
    def heavy_ball(cls, x, beta):
        """θ_{t+1} = (1 + β − x)θ_t − βθ_{t−1} − ξ_t: x = η h^(1−p) > 0, β in [0, 1)."""
        x, beta = (np.ravel(v).astype(np.float64) for v in np.broadcast_arrays(x, beta))
        P, X, Y = beta, x, 2 + 2 * beta - x
        # A = 1 − x + β and the discriminant A² − 4β in double-double arithmetic: near a double
        # root only their own rounding would be left, and the phase tω of complex roots or the
        # ratio of real ones would lose the digits that A² and 4β share
        one_minus_x, low = _two_sum(1.0, -x)
        A, A_low = _two_sum(one_minus_x, beta, low)
        square, square_low = _two_product(A, A)
        disc, disc_low = _two_sum(square, -4 * beta)
        disc = disc + (disc_low + square_low + 2 * A * A_low)
        root_beta = np.sqrt(beta)
        osc = disc < 0
        q = np.sqrt(np.abs(disc))
        sign = np.where(A < 0, -1.0, 1.0)
        m1 = 0.5 * (np.abs(A) + q)
        # 1 − |r₂| = (2 − |A| + q)/2 (A >= 0: a sum of positive terms; A < 0: it cancels for large
        # x, where 1 − β/|r₁| does not) and (1 − |r₁|)(1 − |r₂|) = X (A >= 0) or Y (A < 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            one_minus_m2 = np.where(sign > 0, 0.5 * ((1 - beta + x) + q),
                                    np.where(m1 > 2, 1 - beta / m1, 0.5 * ((3 + beta - x) + q)))
        # log |r₁| from 1 − |r₁| near 1, from |r₁| itself away from 1
        near_one = (m1 >= 0.5) & (m1 <= 2)
        L1 = np.where(near_one, _log1p_neg(np.where(sign > 0, X, Y) / one_minus_m2), _log(m1))
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(m1 > 0, beta / (m1 * m1), 0.0)
            Lrho = np.where(rho > 0.5, _log1p_neg(q / np.where(m1 > 0, m1, 1.0)), _log(rho))
        one_minus_r2 = np.where(sign > 0, one_minus_m2, 1 + rho * m1)
        Lm = 0.5 * _log(beta)
        # complex roots ±√β e^{±iω}: ω in [0, π/2] with the sign of A apart (ψ_k(−A) = (−1)^k ψ_k(A)),
        # so that ω near π (x near (1 + √β)²) keeps its distance to π exactly
        omega = np.arctan2(q, np.abs(A))
        safe_q = np.where(osc & (q > 0), q, 1.0)
        fields_ = dict(A=A, P=P, one_minus_P=1 - beta, X=X, Y=Y, osc=osc, L1=np.where(osc, Lm, L1), L2=np.where(osc, Lm, L1 + Lrho),
                       Lrho=np.where(osc, 0.0, Lrho), s1=sign, s2=sign, one_minus_r2=one_minus_r2, Lm=Lm,
                       omega=np.where(osc, omega, 0.0), cot=np.abs(A) / safe_q, cchi=sign * ((1 - x) - beta) / safe_q,
                       radius=np.where(osc, root_beta, m1), scale=np.ones_like(x))
        return cls(**fields_)

    @classmethod
    def ema(cls, x, d):
        """The average θ̄_t = dθ̄_{t−1} + (1 − d)θ_t of SGD θ_{t+1} = (1 − x)θ_t − ξ_t: roots d, 1 − x."""
        x, d = (np.ravel(v).astype(np.float64) for v in np.broadcast_arrays(x, d))
        r = 1 - x
        Lr = np.where(x < 1, _log1p_neg(x), _log(x - 1))
        Ld = _log(d)
        r_first = Lr >= Ld
        L1, L2 = np.where(r_first, Lr, Ld), np.where(r_first, Ld, Lr)
        s1 = np.where(r_first & (r < 0), -1.0, 1.0)
        s2 = np.where(~r_first & (r < 0), -1.0, 1.0)
        # |r₁| − |r₂| from the parameters: |(1 − d) − x| for r >= 0, |x − (1 + d)| for r < 0
        gap = np.where(r >= 0, np.abs((1 - d) - x), np.abs(x - (1 + d)))
        m1 = np.exp(L1)
        with np.errstate(divide="ignore", invalid="ignore"):
            near = (L2 - L1 > -0.7) & (m1 > 0)
            Lrho = np.where(near, _log1p_neg(gap / np.where(m1 > 0, m1, 1.0)), np.maximum(L2 - L1, LOG_ZERO))
        one_minus_r2 = np.where(r_first, 1 - d, x)
        zeros = np.zeros_like(x)
        return cls(A=d + r, P=d * r, one_minus_P=(1 - d) + d * x, X=(1 - d) * x, Y=(1 + d) * (2 - x), osc=np.zeros(x.shape, bool), L1=L1,
                   L2=L2, Lrho=Lrho, s1=s1, s2=s2, one_minus_r2=one_minus_r2, Lm=zeros, omega=zeros,
                   cot=zeros, cchi=zeros, radius=np.maximum(np.abs(r), d), scale=(1 - d) ** 2)

    def take(self, index):
        """The elements `index` (an index array or boolean mask)."""
        return Recurrence(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @property
    def size(self):
        return self.A.size


def _sign_power(sign, t):
    """sign^t for sign = ±1 and integer-valued t."""
    return np.where((sign < 0) & _odd(t), -1.0, 1.0)


class _Geometric:
    """t ↦ [t]_z = (1 − z^t)/(1 − z) = Σ_{k<t} z^k for fixed z = ±e^L (negative: z < 0), with the
    parts that do not depend on t computed once."""

    def __init__(self, L, negative=None):
        self.L = L
        self.unit = L == 0  # z = 1: [t] = t
        self.any_unit = bool(np.any(self.unit))
        self.negative = negative if negative is not None and np.any(negative) else None
        with np.errstate(divide="ignore"):
            self.denominator = np.where(self.unit, 1.0, np.expm1(L))
            if self.negative is not None:
                self.alternating = 1 / (1 + np.exp(L))

    def __call__(self, t):
        value = np.expm1(t * self.L) / self.denominator
        if self.any_unit:
            value = np.where(self.unit, t, value)
        if self.negative is not None:
            alternating = (1 - np.where(_odd(t), -1.0, 1.0) * np.exp(t * self.L)) * self.alternating
            value = np.where(self.negative, alternating, value)
        return value


class _RealRoots:
    """ψ_t, ψ_{t−1}, φ_t and the direct sum for elements with real roots (t-independent parts once)."""

    def __init__(self, rec):
        self.rec = rec
        self.negative_rho = rec.s1 * rec.s2 < 0
        self.rho_abs = np.exp(rec.Lrho)
        self.rho = np.where(self.negative_rho, -self.rho_abs, self.rho_abs)
        self.bracket = _Geometric(rec.Lrho, self.negative_rho)
        self.first = _Geometric(2 * rec.L1)
        self.middle = _Geometric(rec.L1 + rec.L2, self.negative_rho)
        self.last = _Geometric(2 * rec.L2)
        with np.errstate(over="ignore"):
            self.denominator = np.where(self.negative_rho, (1 + self.rho_abs) ** 2, np.expm1(rec.Lrho) ** 2)
        self.signs = bool(np.any(rec.s1 < 0) or np.any(rec.s2 < 0))

    @np.errstate(over="ignore", invalid="ignore", divide="ignore")
    def psi_phi(self, t):
        """ψ_t, ψ_{t−1}, φ_t = (1 − r₂)ψ_t + r₂^{t+1}."""
        rec = self.rec
        bracket = self.bracket(t)  # [t]_ρ, and [t + 1]_ρ = 1 + ρ[t]_ρ
        psi = np.exp(t * rec.L1) * (1 + self.rho * bracket)
        previous = np.exp(np.maximum(t - 1, 0) * rec.L1) * bracket
        r2_power = np.exp((t + 1) * rec.L2)
        if self.signs:
            psi, previous = psi * _sign_power(rec.s1, t), previous * _sign_power(rec.s1, t + 1)
            r2_power = r2_power * _sign_power(rec.s2, t + 1)
        phi = rec.one_minus_r2 * psi + r2_power
        return psi, previous, np.where(t == 0, 1.0, phi)  # φ₀ = 1, not (1 − r₂) + r₂ rounded

    @np.errstate(over="ignore", invalid="ignore", divide="ignore")
    def direct(self, t):
        """S_t = ([t]_{r₁²} − 2ρ[t]_P + ρ²[t]_{r₂²})/(1 − ρ)² and its error estimate."""
        rho = self.rho
        first, middle, last = self.first(t), self.middle(t), self.last(t)
        value = (first - 2 * rho * middle + rho * rho * last) / self.denominator
        size = first + 2 * self.rho_abs * np.abs(middle) + self.rho_abs**2 * last
        error = ROUNDING * EPS * size / self.denominator
        return value, np.where(np.isfinite(value), error, np.inf)


class _ComplexRoots:
    """ψ_t, ψ_{t−1}, φ_t for elements with complex roots √P e^{±iω}, and the direct sum."""

    def __init__(self, rec):
        self.rec = rec
        self.inverse_sin = 1 / np.sin(rec.omega)
        self.inverse_root = np.exp(-rec.Lm)
        self.plain = _Geometric(2 * rec.Lm)
        self.denominator = 2 * np.sin(rec.omega) ** 2
        self.negative = bool(np.any(rec.s1 < 0))

    def psi_phi(self, t):
        """ψ_t, ψ_{t−1}, φ_t = P^{t/2}(cos tω + cchi sin tω)."""
        rec = self.rec
        modulus = np.exp(t * rec.Lm)
        gone = modulus == 0  # P^{t/2} underflowed: all three are exactly 0, no sine needed
        count = np.count_nonzero(gone)
        if count > gone.size // 4:
            psi, previous, phi = np.zeros(gone.shape), np.zeros(gone.shape), np.zeros(gone.shape)
            live = np.flatnonzero(~gone)
            psi[live], previous[live], phi[live] = self._trig(live, t[live] if np.ndim(t) else t, modulus[live])
            return psi, previous, phi
        return self._trig(slice(None), t, modulus)

    def _trig(self, index, t, modulus):
        rec = self.rec
        angle = t * rec.omega[index]
        sin_t, cos_t = np.sin(angle), np.cos(angle)
        psi = modulus * (cos_t + rec.cot[index] * sin_t)
        previous = modulus * self.inverse_root[index] * sin_t * self.inverse_sin[index]
        phi = modulus * (cos_t + rec.cchi[index] * sin_t)
        if self.negative:  # roots −√P e^{±iω}: ψ_t, φ_t times (−1)^t, ψ_{t−1} times (−1)^{t−1}
            sign = _sign_power(rec.s1[index], t)
            psi, previous, phi = psi * sign, previous * _sign_power(rec.s1[index], t + 1), phi * sign
        return psi, previous, phi

    def direct_error_bound(self, t):
        """An upper estimate of the direct sum's error (to decide where computing it pays)."""
        return ROUNDING * EPS * 2 * self.plain(t) / self.denominator

    def direct(self, index, t):
        """S_t = ([t]_P − Re(e^{2iω}[t]_{Pe^{2iω}}))/(2 sin²ω) and its error, for the elements `index`."""
        rec = self.rec
        omega, log_p = rec.omega[index], 2 * rec.Lm[index]
        plain = _Geometric(log_p)(t)
        w = log_p + 2j * omega
        rotated = np.exp(2j * omega) * np.expm1(t * w) / np.expm1(w)
        denominator = self.denominator[index]
        return (plain - rotated.real) / denominator, ROUNDING * EPS * (plain + np.abs(rotated)) / denominator


@np.errstate(over="ignore", invalid="ignore")
def _tail_form(rec, psi, previous):
    """S_t = γ₀(1 − ψ_t² − P²ψ_{t−1}² + 2PA/(1 + P) ψ_tψ_{t−1}) and its absolute error estimate."""
    cross = rec.cross * psi * previous
    a, b = psi * psi, (rec.P * previous) ** 2
    value = rec.gamma0 * (1 - a - b + cross)
    error = ROUNDING * EPS * rec.gamma0 * (1 + a + b + np.abs(cross))
    return value, np.where(rec.stable & np.isfinite(error), error, np.inf)


def _doubling(lam, log_lam, t):
    """Σ_{k=1}^t Z^k for the bidiagonal Z = [[λ₀, 1, 0], [0, λ₁, 1], [0, 0, λ₂]] by binary
    doubling on t (⌈log₂ t⌉ levels): its (0, 1) and (0, 2) entries, the first and second divided
    differences of f(z) = Σ_{k=1}^t z^k at (λ₀, λ₁) and (λ₀, λ₁, λ₂) (Opitz). The diagonals of
    Z^m come from exp(m log λ), the rest from sums of products: with λ >= 0 no term is negative,
    so nothing cancels and the relative error stays ~ε log₂ t."""
    dtype = np.result_type(*lam)
    m = np.zeros(t.shape)
    p01, p12, p02, q01, q12, q02 = (np.zeros(t.shape, dtype) for _ in range(6))
    bits = t.astype(np.int64)
    for level in reversed(range(int(np.max(bits)).bit_length())):
        d0, d1, d2 = (np.exp(m * log) for log in log_lam)
        sum1, sum2 = (lam_i * _Geometric(log)(m) for lam_i, log in zip(lam[1:], log_lam[1:]))
        # (P, Q) -> (P², Q + PQ), Q's diagonal being Σ_{k<=m} λ^k
        q01, q12, q02 = (q01 + d0 * q01 + p01 * sum1, q12 + d1 * q12 + p12 * sum2,
                         q02 + d0 * q02 + p01 * q12 + p02 * sum2)
        p01, p12, p02 = d0 * p01 + p01 * d1, d1 * p12 + p12 * d2, d0 * p02 + p01 * p12 + p02 * d2
        m = 2 * m
        step = ((bits >> level) & 1) == 1
        if np.any(step):  # (P, Q) -> (PZ, Q + PZ)
            d0, d1 = np.exp(m * log_lam[0]), np.exp(m * log_lam[1])
            n01, n12, n02 = d0 + p01 * lam[1], d1 + p12 * lam[2], p01 + p02 * lam[2]
            p01, p12, p02 = (np.where(step, new, old) for new, old in ((n01, p01), (n12, p12), (n02, p02)))
            q01, q12, q02 = (np.where(step, q + new, q) for q, new in ((q01, n01), (q12, n12), (q02, n02)))
            m = m + step
    return q01, q02


def _doubling_sum(rec, t):
    """S_t = f[r₁², r₂²] + 2P f[r₁², r₂², P] with f(z) = Σ_{k=1}^t z^k, by _doubling, and its
    error estimate (real roots of one sign: |r| in place of r, as ψ_k² does not see the sign)."""
    if not np.any(rec.osc):
        logs = (2 * rec.L1, 2 * rec.L2, rec.L1 + rec.L2)
    else:
        logs = (2 * rec.Lm + 2j * rec.omega, 2 * rec.Lm - 2j * rec.omega, 2 * rec.Lm + 0j)
    lam = tuple(np.exp(log) for log in logs)
    first, second = _doubling(lam, logs, t)
    value = (first + 2 * lam[2] * second).real
    return value, _doubling_error(t) * np.abs(value)


def _doubling_error(t):
    """_doubling_sum's relative error estimate (calibrated like the others: an upper estimate)."""
    return 0.5 * ROUNDING * EPS * (np.log2(np.maximum(t, 1)) + 2)


class Moments:
    """φ_t, S_t = Σ_{k<t} ψ_k² and S_t's relative error estimate for every element of a Recurrence.

    Per element the tail form and the direct sum are both exact; the one with the smaller
    a-posteriori error estimate is taken, and where both cancel (a double root near 1, t short of
    a few decay times) the binary doubling of the bidiagonal (Opitz) matrix, O(log t), whose
    terms are all of one sign.
    """

    def __init__(self, rec):
        self.rec = rec
        self.real_index, self.osc_index = np.flatnonzero(~rec.osc), np.flatnonzero(rec.osc)
        self.real = _RealRoots(rec.take(self.real_index)) if self.real_index.size else None
        self.osc = _ComplexRoots(rec.take(self.osc_index)) if self.osc_index.size else None
        self.unstable = ~rec.stable
        self.doubling_allowed = (rec.osc | (rec.s1 * rec.s2 > 0)) & rec.stable

    def __call__(self, t, target=0.0):
        """(φ_t, S_t, relative error of S_t) per element; t a scalar or one per element, integers.

        The forms beyond the cheapest (the direct sum for complex roots, the doubling) run only
        where the estimate so far exceeds `target` (relative) too: 0 takes the most accurate
        everywhere; inf the cheapest, for a caller that only needs the estimate to decide what
        to recompute."""
        rec = self.rec
        t = np.asarray(t, dtype=np.float64)
        per_element = t.ndim > 0
        phi, S, err = (np.empty(rec.A.shape) for _ in range(3))
        if self.real is not None:
            index, sub = self.real_index, self.real.rec
            ts = t[index] if per_element else t
            psi, previous, phi[index] = self.real.psi_phi(ts)
            direct, direct_err = self.real.direct(ts)
            tail, tail_err = _tail_form(sub, psi, previous)
            use_direct = direct_err < tail_err
            S[index] = np.where(use_direct, direct, tail)
            err[index] = np.where(use_direct, direct_err, tail_err)
        if self.osc is not None:
            index, sub = self.osc_index, self.osc.rec
            ts = t[index] if per_element else t
            psi, previous, phi[index] = self.osc.psi_phi(ts)
            tail, tail_err = _tail_form(sub, psi, previous)
            S[index], err[index] = tail, tail_err
            better = np.flatnonzero((self.osc.direct_error_bound(ts) < tail_err) & (tail_err > np.abs(tail) * target if target < np.inf else False))
            if better.size:
                direct, direct_err = self.osc.direct(better, ts[better] if per_element else ts)
                pick = direct_err < tail_err[better]
                S[index[better[pick]]], err[index[better[pick]]] = direct[pick], direct_err[pick]
        S = np.where(self.unstable & np.isnan(S), np.inf, S)  # an unstable direction's overflow
        phi = np.where(self.unstable & np.isnan(phi), np.inf, phi)
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.where(S > 0, err / S, np.where(err > 0, np.inf, 0.0))
        relative = np.where(np.isnan(relative), np.inf, relative)
        doubling = np.flatnonzero(self.doubling_allowed & (relative > np.maximum(_doubling_error(t), target)))
        for group in (doubling[~rec.osc[doubling]], doubling[rec.osc[doubling]]):
            if group.size:
                value, error = _doubling_sum(rec.take(group), t[group] if per_element else np.full(group.size, t))
                S[group], relative[group] = value, error / np.where(value > 0, value, 1.0)
        return phi, S, relative


    def phi(self, t):
        """φ_t alone, per element."""
        t = np.asarray(t, dtype=np.float64)
        phi = np.empty(self.rec.A.shape)
        for index, part in ((self.real_index, self.real), (self.osc_index, self.osc)):
            if part is not None:
                phi[index] = part.psi_phi(t[index] if t.ndim else t)[2]
        return np.where(self.unstable & np.isnan(phi), np.inf, phi)


def moments(rec, t, target=0.0):
    """Moments(rec)(t, target): φ_t, S_t and S_t's relative error estimate per element."""
    return Moments(rec)(t, target)


def weighted(weight, value):
    """weight · value with 0 where the weight is 0 (a direction without s0 or noise adds nothing,
    even where its unweighted value overflowed)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(weight > 0, weight * value, 0.0)


# --- the model: directions of a NoisyQuadratic under a query, summed into the loss ----------

#: The largest step count accepted: t is exact in float64 up to 2⁵³.
MAX_STEPS = 2**53


def as_steps(value, name="t"):
    """Step counts: integers >= 0 (integer arrays, or floats with integer values), as float64."""
    raw = np.asarray(value)
    if raw.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be integers >= 0; got dtype {raw.dtype}")
    steps = np.asarray(finite_real_array(raw, name), dtype=np.float64)
    bad = (steps != np.round(steps)) | (steps < 0) | (steps > MAX_STEPS)
    if np.any(bad):
        raise ValueError(f"{name} must be integers in [0, 2**53]; got {steps[bad].flat[0]}")
    return steps


def as_ema(value, beta):
    """The iterate-average decay d in [0, 1), which needs beta = 0 (None: no average)."""
    if value is None:
        return None
    ema = np.asarray(finite_real_array(value, "ema"), dtype=np.float64)
    if np.any((ema < 0) | (ema >= 1)):
        raise ValueError(f"ema must be in [0, 1); got {ema[(ema < 0) | (ema >= 1)].flat[0]}")
    beta = np.asarray(beta)
    if np.any(beta != 0):
        raise ValueError(f"ema averages the iterates of SGD: it needs beta = 0; got beta = {beta[beta != 0].flat[0]}")
    return ema


@dataclass
class Directions:
    """Every (query, direction) element of a validated query: its recurrence (flat, the query's
    shape times n, directions with counts 0 left out) and its two weights, the loss being
    Σ_directions ``ws`` φ_t² + ``wn`` S_t."""

    shape: tuple
    rec: Recurrence
    ws: np.ndarray
    wn: np.ndarray
    extras: dict

    @classmethod
    def build(cls, model, *, lr, beta, batch_size, precondition, ema=None, extra=None):
        extra = dict(extra or {})
        ema = as_ema(ema, np.asarray(finite_real_array(beta, "beta")))
        if ema is not None:
            extra["ema"] = ema
        q, extras = query(model, lr=lr, beta=beta, batch_size=batch_size, precondition=precondition, extra=extra)
        keep = model.counts > 0
        x, noise = q.x[..., keep], q.noise[..., keep]
        if ema is None:
            rec = Recurrence.heavy_ball(x, q.beta[..., None])
        else:
            rec = Recurrence.ema(x, extras.pop("ema")[..., None])
        weights = model.weights[keep]
        ws = np.broadcast_to(weights * model.s0[keep], x.shape).ravel()
        wn = (weights * noise).ravel() * rec.scale
        return cls(q.shape, rec, ws, wn, extras)

    @property
    def n(self):
        return self.ws.size // max(int(np.prod(self.shape)), 1)

    def per_query(self, values):
        """Σ over the directions of per-element values: shape ``self.shape``."""
        return values.reshape(self.shape + (self.n,)).sum(axis=-1)

    @np.errstate(over="ignore", invalid="ignore")
    def loss(self, phi, S):
        return self.per_query(weighted(self.ws, phi * phi) + weighted(self.wn, S))


def _scalar_or_array(array):
    return array[()] if array.ndim == 0 else array


def expected_loss(model, t, *, lr, beta=0.0, batch_size=1, precondition=0.0, ema=None):
    """E[ℓ(θ_t)] of the noisy quadratic model, exactly, in O(n) per query whatever t.

    Per direction E[θ_t²] = s0 φ_t² + σ² S_t (heavy ball: the recursion in :mod:`polyak.nqm`);
    with ``ema=d`` the loss of the average θ̄_t (β must be 0) with A = d + 1 − x, P = d(1 − x)
    and noise (1 − d)²σ². The arguments broadcast together (NumPy's rules); scalars give a float.

    Parameters
    ----------
    model : NoisyQuadratic
    t : int or array_like of int
        Steps, integers in [0, 2⁵³].
    lr : float or array_like
        Learning rates η > 0.
    beta : float or array_like
        Momentum β in [0, 1) (0: SGD).
    batch_size : int or array_like of int
        b >= 1: the gradient noise has covariance diag(c)/b.
    precondition : float or array_like
        p: the preconditioner is P = H^(−p) (0: none, 1: Newton's scaling).
    ema : float or array_like, optional
        The decay d in [0, 1) of the exponential moving average of the iterates.

    Returns
    -------
    float or ndarray
        The expected loss; may be huge or inf for an unstable configuration.

    Notes
    -----
    Accuracy: relative error about 1e-15 of S_t per direction (each direction picks, from two
    exact closed forms, the one with the smaller a-posteriori rounding-error estimate, and a
    binary doubling where both cancel); φ_t carries the conditioning of its phase t·ω in
    oscillating directions (absolute error ~ ε·t·ω of its amplitude).
    """
    steps = as_steps(t)
    directions = Directions.build(model, lr=lr, beta=beta, batch_size=batch_size, precondition=precondition,
                                  ema=ema, extra={"t": steps})
    per_element = np.broadcast_to(directions.extras["t"][..., None], directions.shape + (directions.n,)).ravel()
    phi, S, _ = moments(directions.rec, per_element)
    return _scalar_or_array(directions.loss(phi, S))


def steady_state_loss(model, *, lr, beta=0.0, batch_size=1, precondition=0.0, ema=None):
    """lim_{t→∞} E[ℓ(θ_t)] = Σᵢ ½ countsᵢ hᵢ σᵢ² γ₀ᵢ, γ₀ = (1 + P)/((1 − P)(1 − A + P)(1 + A + P)).

    Heavy ball: γ₀ = (1 + β)/((1 − β) x (2 + 2β − x)); SGD (β = 0): 1/(x(2 − x)); with ``ema=d``:
    (1 − d)² (1 + P)/((1 − P)(1 − d)x(1 + d)(2 − x)), P = d(1 − x). The limit does not depend on
    s0 when every direction is stable; it is inf when some direction with weight (counts > 0
    and s0 > 0 or noise) has spectral radius >= 1. Arguments as in :func:`expected_loss`.
    """
    directions = Directions.build(model, lr=lr, beta=beta, batch_size=batch_size, precondition=precondition, ema=ema)
    rec = directions.rec
    stable_part = weighted(directions.wn, np.where(rec.stable, rec.gamma0, 0.0))
    diverges = ~rec.stable & ((directions.ws > 0) | (directions.wn > 0))
    return _scalar_or_array(directions.per_query(np.where(diverges, np.inf, stable_part)))
