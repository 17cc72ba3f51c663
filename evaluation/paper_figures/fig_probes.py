"""Figs. 3, 17 and 18: linear probes on isotropic vs anisotropic embeddings of equal total variance (paper
section 3.1 and 3.3, Lemma 1 (anisotropy amplifies bias) and Lemma 2 (anisotropy amplifies variance)).

Both embeddings are Gaussian with covariance I (isotropic) or a diagonal one with the same trace and the
stated condition number (anisotropic), and each task is defined in the embedding's own coordinates with the
same true coefficients, as in Lemma 2. Sample sizes, noise levels and repeat counts the paper does not give
are assumed and named in each caption.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evaluation.paper_figures.registry import Drawn, new_figure, theory_figure


def spectrum(dim: int, condition: float) -> np.ndarray:
    """Covariance eigenvalues from 1 to `condition` in geometric steps, scaled to trace = dim (the total
    variance of the isotropic embedding)."""
    values = np.geomspace(1.0, condition, dim) if dim > 1 else np.ones(1)
    return values * dim / values.sum()


def total_variance(estimates: np.ndarray) -> float:
    """tr Cov of estimates (repeats x coefficients)."""
    return float(np.trace(np.atleast_2d(np.cov(estimates.T))))


def _boundary_line(normal: np.ndarray, intercept: float, reach: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Two far points of {x : normal . x + intercept = 0}, vertical lines included."""
    scale = normal @ normal
    foot = -intercept * normal / scale
    along = np.array([-normal[1], normal[0]]) / np.sqrt(scale)
    ends = np.stack([foot - reach * along, foot + reach * along])
    return ends[:, 0], ends[:, 1]


def fit_logistic(z: np.ndarray, y: np.ndarray, ridge: float = 1e-3, iterations: int = 30
                 ) -> tuple[np.ndarray, float]:
    """Logistic-regression weights and intercept by Newton's method (maximum likelihood; the tiny ridge on
    the weights only keeps a separable draw finite)."""
    x = np.hstack([z, np.ones((len(z), 1))])
    w = np.zeros(x.shape[1])
    penalty = np.diag([ridge] * z.shape[1] + [0.0])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-x @ w))
        step = np.linalg.solve(x.T @ (x * (p * (1 - p))[:, None]) + penalty, x.T @ (p - y) + penalty @ w)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w[:-1], float(w[-1])


def logistic_boundaries(variances: np.ndarray, true_w: np.ndarray, samples: int, repeats: int, seed: int
                        ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Logistic regressions fitted on `repeats` fresh training sets of z ~ N(0, diag(variances)), labels ~
    Bernoulli(sigmoid(true_w . z)): weights (repeats, 2), intercepts, and the first training set."""
    rng = np.random.default_rng(seed)
    coefs, intercepts, first = [], [], None
    for _ in range(repeats):
        z = rng.standard_normal((samples, 2)) * np.sqrt(variances)
        y = (rng.random(samples) < 1 / (1 + np.exp(-z @ true_w))).astype(float)
        weights, intercept = fit_logistic(z, y)
        coefs.append(weights)
        intercepts.append(intercept)
        first = first or (z, y > 0)
    return np.asarray(coefs), np.asarray(intercepts), first


@theory_figure(
    "fig3", "Logistic regression on isotropic vs anisotropic embeddings",
    "A 2-class logistic regression fitted on many resampled training sets of 100 points: the learned "
    "boundaries spread much more when the embedding is anisotropic than when it is isotropic with the same "
    "total variance (paper Fig. 3, Lemma 2).")
def fig3(out_dir: Path | None = None, samples: int = 100, repeats: int = 200, condition: float = 20.0,
         seed: int = 0) -> Drawn:
    true_w = np.array([2.0, 2.0])  # assumed: the paper does not give its true boundary or label noise
    fig, axes = new_figure(1, 2, width=4.2, height=4.2)
    spreads = {}
    for ax, name, variances in ((axes[0], "Isotropic", np.ones(2)), (axes[1], "Anisotropic", spectrum(2, condition))):
        coefs, intercepts, (z, y) = logistic_boundaries(variances, true_w, samples, repeats, seed)
        spreads[name] = total_variance(coefs)
        for coef, intercept in zip(coefs, intercepts):
            ax.plot(*_boundary_line(coef, intercept), color="purple", alpha=0.08, lw=1)
        ax.plot(*_boundary_line(true_w, 0.0), "k--", lw=1.5, label="true boundary")
        ax.scatter(z[:, 0], z[:, 1], c=np.where(y, "tab:orange", "tab:blue"), s=8, zorder=3)
        ax.plot([], [], color="purple", label="learned boundaries")
        extra = f" (condition number {condition:.0f})" if name == "Anisotropic" else ""
        ax.set(xlim=(-4, 4), ylim=(-4, 4), aspect="equal", xlabel="x1", ylabel="x2",
               title=f"{name}{extra}\ntr Var(β̂) = {spreads[name]:.4f}")
        ax.legend(fontsize="small", loc="lower right")
    fig.suptitle(f"{repeats} training sets of {samples} points, equal total variance (paper Fig. 3)")
    ratio = spreads["Anisotropic"] / spreads["Isotropic"]
    caption = (f"tr Var(β̂) of the logistic-regression weights over {repeats} training sets of {samples} points: "
               f"{spreads['Isotropic']:.4f} isotropic vs {spreads['Anisotropic']:.4f} anisotropic (condition number "
               f"{condition:.0f}), {ratio:.1f} times larger (maximum likelihood; true weights (2, 2) assumed; the paper "
               f"reports 0.0056 vs 0.0801 for its unstated setting).")
    return Drawn(fig, caption)


def ols(z: np.ndarray, y: np.ndarray, ridge: float = 0.0) -> np.ndarray:
    """argmin ||y - z b||^2 + ridge ||b||^2 (no intercept: the embeddings are centred)."""
    return np.linalg.solve(z.T @ z + ridge * np.eye(z.shape[1]), z.T @ y)


# target(s, rng) of the projection s = z . true_b, and the population OLS coefficient for z ~ N(0, diag(var))
# (Stein's lemma: E[z f(s)] = diag(var) true_b E[f'(s)], so OLS recovers true_b E[f'(s)]); binary estimates
# are normalised, their population value is the unit true direction.
TASKS = {
    "binary": (lambda s, rng: np.sign(s), lambda b, var: b / np.linalg.norm(b)),
    "linear": (lambda s, rng: s + 0.5 * rng.standard_normal(len(s)), lambda b, var: b),
    "smooth": (lambda s, rng: np.sin(s) + s + 0.5 * rng.standard_normal(len(s)),
               lambda b, var: b * (1 + np.exp(-(b**2 * var).sum() / 2))),
}


@theory_figure(
    "fig17", "OLS estimates on isotropic vs anisotropic embeddings",
    "The distribution of 2-D OLS estimates over resampled training sets for a binary, a linear and a smooth "
    "nonlinear target, isotropic vs anisotropic embedding of equal total variance (paper Fig. 17, Lemma 2).")
def fig17(out_dir: Path | None = None, samples: int = 50, repeats: int = 500, condition: float = 20.0,
          seed: int = 0) -> Drawn:
    true_b = np.array([1.0, 1.0]) / np.sqrt(2)
    fig, axes = new_figure(len(TASKS), 2, width=3.3, height=3.0)
    variances = {}
    for row, (task, (target, population)) in enumerate(TASKS.items()):
        for col, (name, var) in enumerate((("isotropic", np.ones(2)), ("anisotropic", spectrum(2, condition)))):
            rng = np.random.default_rng(seed + 10 * row)
            estimates = []
            for _ in range(repeats):
                z = rng.standard_normal((samples, 2)) * np.sqrt(var)
                b = ols(z, target(z @ true_b, rng))
                estimates.append(b / np.linalg.norm(b) if task == "binary" else b)
            estimates = np.asarray(estimates)
            variances[(task, name)] = total_variance(estimates)
            ax = axes[2 * row + col]
            ax.scatter(estimates[:, 0], estimates[:, 1], s=3, alpha=0.3,
                       color="tab:red" if name == "isotropic" else "tab:blue")
            ax.scatter(*population(true_b, var), marker="*", s=120, color="black", label="population β")
            ax.set(xlabel="β1", ylabel="β2", xlim=(-1.5, 2.5), ylim=(-1.5, 2.5),
                   title=f"{task} target, {name}\ntr Var(β̂) = {variances[(task, name)]:.3f}")
            ax.title.set_fontsize(8)
    fig.suptitle(f"OLS over {repeats} training sets of N = {samples} (binary: β̂ normalised; paper Fig. 17)",
                 fontsize=9)
    ratios = [variances[(t, "anisotropic")] / variances[(t, "isotropic")] for t in TASKS]
    caption = (f"tr Var(β̂) is {min(ratios):.1f} to {max(ratios):.1f} times larger on the anisotropic embedding "
               f"(condition number {condition:.0f}) than on the isotropic one across the binary, linear and smooth "
               f"targets (N = {samples}, {repeats} draws, noise 0.5 assumed). The paper's caption swaps the "
               "colours' roles; its Lemma 2 and Section 3.3 say anisotropy raises the variance, as measured here.")
    return Drawn(fig, caption)


def ridge_curves(dim: int, condition: float, samples: int, ridges: np.ndarray, repeats: int, seed: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Mean test accuracy (sign labels, ridge on +-1 targets) and mean cos(w_hat, w*) (linear target, noise
    0.5) for each Tikhonov strength."""
    rng = np.random.default_rng(seed)
    true_w = rng.standard_normal(dim)
    true_w /= np.linalg.norm(true_w)
    scale = np.sqrt(spectrum(dim, condition))
    test = rng.standard_normal((2000, dim)) * scale
    accuracy, cosine = np.zeros(len(ridges)), np.zeros(len(ridges))
    for _ in range(repeats):
        z = rng.standard_normal((samples, dim)) * scale
        labels = np.sign(z @ true_w)
        targets = z @ true_w + 0.5 * rng.standard_normal(samples)
        for i, ridge in enumerate(ridges):
            w = ols(z, labels, ridge)
            accuracy[i] += np.mean(np.sign(test @ w) == np.sign(test @ true_w)) / repeats
            w = ols(z, targets, ridge)
            cosine[i] += w @ true_w / np.linalg.norm(w) / repeats
    return accuracy, cosine


@theory_figure(
    "fig18", "Tikhonov-regularised linear probes: accuracy and alignment",
    "Test accuracy of a ridge classifier and cosine between the ridge estimate and the true weights, against "
    "the Tikhonov strength, for isotropic and anisotropic embeddings: anisotropy biases the regularised "
    "estimate away from the truth (paper Fig. 18, Lemma 1).")
def fig18(out_dir: Path | None = None, dim: int = 16, sample_sizes: tuple = (50, 200, 1000),
          conditions: tuple = (1, 5, 10, 50), repeats: int = 50, seed: int = 0) -> Drawn:
    ridges = np.logspace(-4, 2, 13)
    fig, axes = new_figure(2, len(sample_sizes), width=3.6, height=3.0)
    cos_at_max = {}
    for col, samples in enumerate(sample_sizes):
        for condition in conditions:
            accuracy, cosine = ridge_curves(dim, condition, samples, ridges, repeats, seed)
            name = "isotropic (κ = 1)" if condition == 1 else f"anisotropic (κ = {condition})"
            axes[col].plot(ridges, accuracy, marker=".", label=name)
            axes[len(sample_sizes) + col].plot(ridges, cosine, marker=".", label=name)
            cos_at_max[(samples, condition)] = cosine[-1]
        axes[col].set(xscale="log", xlabel="Tikhonov λ", ylabel="test accuracy",
                      title=f"linear classification, N = {samples}")
        axes[len(sample_sizes) + col].set(xscale="log", xlabel="Tikhonov λ", ylabel="E[cos(ŵ, w*)]",
                                          title=f"linear regression, N = {samples}")
    axes[0].legend(fontsize="x-small")
    fig.suptitle(f"Ridge probes on D = {dim} embeddings of equal total variance, {repeats} draws (paper Fig. 18)",
                 fontsize=9)
    n, worst = sample_sizes[0], max(conditions)
    caption = (f"At λ = {ridges[-1]:g} and N = {n}, the ridge estimate's mean cosine to the true weights is "
               f"{cos_at_max[(n, min(conditions))]:.3f} on the isotropic embedding and {cos_at_max[(n, worst)]:.3f} at "
               f"condition number {worst} (D = {dim}, noise 0.5, {repeats} draws: assumed).")
    return Drawn(fig, caption)
