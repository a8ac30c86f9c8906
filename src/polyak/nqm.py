"""The noisy quadratic model (NQM) of Zhang et al., "Which Algorithmic Choices Matter at Which
Batch Sizes?" (NeurIPS 2019): momentum, preconditioning and iterate averaging under gradient
noise, in closed form.

The model
---------
ℓ(θ) = ½ Σᵢ countsᵢ hᵢ θᵢ² (H = diag(h); each hᵢ may stand for countsᵢ directions). A step sees
g = Hθ + ε, ε independent across steps, zero mean, Cov(ε) = diag(c)/b (b the batch size; c = h
in the paper). Preconditioned heavy ball with P = diag(h^(−p)), learning rate η, momentum β:

    θ_{t+1} = θ_t − η P g_t + β (θ_t − θ_{t−1}),   θ_{−1} = θ₀,   E[θ₀²] = s0.

(v = θ_t − θ_{t−1} is the d2l/optax velocity scaled by −η: at a constant learning rate every
convention traces these iterates.) Per direction, with x = η hᵢ^(1−p) and σ² = η² hᵢ^(−2p) cᵢ/b,

    θ_{t+1} = (1 + β − x) θ_t − β θ_{t−1} − η Pᵢ εᵢ,t.

The recursions
--------------
The second moments (E[θ_t²], E[θ_t θ_{t−1}], E[θ_{t−1}²]) follow the 3×3 linear recursion (a = 1 + β − x)

    E[θ_{t+1}²]       = a² E[θ_t²] − 2aβ E[θ_t θ_{t−1}] + β² E[θ_{t−1}²] + σ²
    E[θ_{t+1} θ_t]    = a E[θ_t²] − β E[θ_t θ_{t−1}]
    E[θ_t²]           = E[θ_t²]

whose eigenvalues are r₁², r₁r₂ = β, r₂², r₁,₂ the roots of μ² − aμ + β = 0. Solved: with
ψ_k = (r₁^{k+1} − r₂^{k+1})/(r₁ − r₂) (ψ₀ = 1, ψ_{k+1} = aψ_k − βψ_{k−1}) and
φ_t = ψ_t − βψ_{t−1},

    E[θ_t²] = s0 φ_t² + σ² S_t,   S_t = Σ_{k<t} ψ_k²,   E[ℓ(θ_t)] = Σᵢ ½ countsᵢ hᵢ E[θᵢ,t²].

SGD is β = 0: E[θ_t²] = (1 − x)^{2t} s0 + σ² (1 − (1 − x)^{2t})/(x(2 − x)).

The exponential moving average θ̄₀ = θ₀, θ̄_t = d θ̄_{t−1} + (1 − d) θ_t of SGD's iterates (β = 0)
is the same kind of recursion, θ̄_{t+1} = (d + r) θ̄_t − d r θ̄_{t−1} − (1 − d) ξ_t with r = 1 − x:
its roots are d and 1 − x, its noise (1 − d)² σ², and E[θ̄_t²] = s0 φ̄_t² + (1 − d)² σ² S̄_t with
φ̄_t = d^t + (1 − d) r ψ̄_{t−1}. Its own second moments (E[θ_t²], E[θ̄_t²], E[θ_t θ̄_t]) again
follow a 3×3 recursion. d = 0 is SGD.

Steady states
-------------
Where every direction is stable (spectral radius max|r| < 1: 0 < x < 2 + 2β for heavy ball),
φ_t → 0 and S_t → γ₀ = (1 + β)/((1 − β)(1 + β − a)(1 + β + a)), so

    heavy ball:  E[θ²]_∞ = σ² (1 + β)/((1 − β) x (2 + 2β − x)),
    SGD:         E[θ²]_∞ = σ² / (x (2 − x)),
    EMA:         E[θ̄²]_∞ = (1 − d)² σ² (1 + d r)/((1 − d r)(1 − d) x (1 + d)(2 − x)),

and the steady-state loss is Σᵢ ½ countsᵢ hᵢ E[θᵢ²]_∞ (inf when some direction with weight is
unstable). One direction with h = c = b = 1, η = 0.1, β = 0.9, s0 = 1: E[θ₃₇²] = 0.5175247025,
E[θ²]_∞ = 0.5135135135.

Exactly, at any t
-----------------
:func:`expected_loss` evaluates these closed forms in O(n) per query whatever t (up to 2⁵³), with
every power taken as exp(t·log) of a logarithm computed from a distance to 1 that has no
cancellation, exact at double roots and for x down to the smallest floats (no epsilon added
anywhere); S_t per direction from whichever of two exact forms has the smaller rounding-error
estimate, and a binary doubling where both cancel (see ``polyak._nqm_moments``).
:func:`steps_to_loss` finds the first step under a threshold exactly, also where momentum makes
the loss oscillate; :func:`optimal_steps` the fewest steps over a grid of (lr, β) per batch size,
the curves of the paper's figures; :func:`critical_batch_size` reads the critical batch size
off them.

The paper's momentum experiment::

    import numpy as np
    from polyak import nqm

    # 10⁴ directions h_i = 1/i, c = h, binned into 100 log-uniform bins
    model = nqm.NoisyQuadratic.binned(1 / np.arange(1, 10_001), bins=100)
    sizes = 2 ** np.arange(2, 22)
    result = nqm.optimal_steps(model, 0.01, batch_size=sizes, lr=np.logspace(-8, 1, 100),
                               beta=1 - np.logspace(-5, 0, 20))
    result.steps, result.critical_batch_size()
"""

from polyak._nqm_model import NoisyQuadratic
from polyak._nqm_moments import expected_loss, steady_state_loss
from polyak._nqm_search import OptimalSteps, critical_batch_size, optimal_steps, steps_to_loss
from polyak._nqm_simulate import SimulationResult, simulate

__all__ = [
    "NoisyQuadratic",
    "OptimalSteps",
    "SimulationResult",
    "critical_batch_size",
    "expected_loss",
    "optimal_steps",
    "simulate",
    "steady_state_loss",
    "steps_to_loss",
]
