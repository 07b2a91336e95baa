//! Small dense symmetric eigenproblems, solved on the host in `f64`: the
//! principal component Eigen-CAM and eigen smoothing need.
//!
//! The matrices are Gram matrices of one map's `positions × channels`
//! matrix, of size `min(positions, channels)` (49 for a 7×7 tap, 196 for a
//! ViT-B/16 token grid), far too small to be worth a device kernel.

/// The top eigenpair of the symmetric positive semi-definite `n × n` matrix
/// `g` (row-major) by power iteration: `(λ₁, v₁)` with `|v₁| = 1`.
///
/// Converges as `(λ₂/λ₁)^iterations`; stops when the vector moves by less
/// than `1e-13` or after 20 000 iterations (a near tie of `λ₁` and `λ₂`,
/// where the principal direction is not defined anyway). A zero matrix
/// gives `(0, e₁)`.
pub(crate) fn top_eigenpair(g: &[f64], n: usize) -> (f64, Vec<f64>) {
    debug_assert_eq!(g.len(), n * n);
    // Start from the column of largest norm: never orthogonal to v₁ unless
    // g is zero there too.
    let column_norm = |j: usize| (0..n).map(|i| g[i * n + j].powi(2)).sum::<f64>();
    let start = (0..n)
        .max_by(|&a, &b| column_norm(a).total_cmp(&column_norm(b)))
        .unwrap_or(0);
    let mut v: Vec<f64> = (0..n).map(|i| g[i * n + start]).collect();
    let norm = l2(&v);
    if norm == 0.0 {
        let mut e = vec![0.0; n];
        if n > 0 {
            e[0] = 1.0;
        }
        return (0.0, e);
    }
    v.iter_mut().for_each(|x| *x /= norm);
    let mut w = vec![0.0; n];
    for _ in 0..20_000 {
        for (i, wi) in w.iter_mut().enumerate() {
            *wi = g[i * n..(i + 1) * n]
                .iter()
                .zip(&v)
                .map(|(a, b)| a * b)
                .sum();
        }
        let norm = l2(&w);
        if norm == 0.0 {
            break;
        }
        let mut moved = 0.0f64;
        for (vi, wi) in v.iter_mut().zip(&w) {
            let next = wi / norm;
            moved = moved.max((next - *vi).abs());
            *vi = next;
        }
        if moved < 1e-13 {
            break;
        }
    }
    let lambda = (0..n)
        .map(|i| {
            v[i] * g[i * n..(i + 1) * n]
                .iter()
                .zip(&v)
                .map(|(a, b)| a * b)
                .sum::<f64>()
        })
        .sum();
    (lambda, v)
}

/// Every eigenvalue of the symmetric `n × n` matrix `g` (row-major),
/// descending, by cyclic Jacobi rotations.
pub(crate) fn eigenvalues(g: &[f64], n: usize) -> Vec<f64> {
    let mut a = g.to_vec();
    let scale: f64 = a.iter().map(|x| x * x).sum();
    for _ in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A ← Jᵀ A J with the rotation in the (p, q) plane.
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    let mut values: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();
    values.sort_by(|x, y| y.total_cmp(x));
    values
}

fn l2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// One map's centred `positions × channels` matrix `M` (channels centred
/// over the positions), from `values[k · p + i]` (channel-major, as a
/// `[K, P]` slice), and the Gram matrix of its smaller side.
pub(crate) struct Centred {
    m: Vec<f64>,
    positions: usize,
    channels: usize,
}

impl Centred {
    pub(crate) fn new(values: &[f32], channels: usize, positions: usize) -> Self {
        let mut m = vec![0.0; positions * channels];
        for k in 0..channels {
            let column = &values[k * positions..(k + 1) * positions];
            let mean = column.iter().map(|&x| f64::from(x)).sum::<f64>() / positions as f64;
            for (i, &x) in column.iter().enumerate() {
                m[i * channels + k] = f64::from(x) - mean;
            }
        }
        Self {
            m,
            positions,
            channels,
        }
    }

    /// `M Mᵀ` (positions ≤ channels) or `Mᵀ M`, and its size.
    pub(crate) fn gram(&self) -> (Vec<f64>, usize) {
        let (p, k, m) = (self.positions, self.channels, &self.m);
        if p <= k {
            let mut g = vec![0.0; p * p];
            for i in 0..p {
                for j in i..p {
                    let v: f64 = (0..k).map(|c| m[i * k + c] * m[j * k + c]).sum();
                    g[i * p + j] = v;
                    g[j * p + i] = v;
                }
            }
            (g, p)
        } else {
            let mut g = vec![0.0; k * k];
            for row in m.chunks_exact(k) {
                for a in 0..k {
                    let ra = row[a];
                    if ra == 0.0 {
                        continue;
                    }
                    for b in a..k {
                        g[a * k + b] += ra * row[b];
                    }
                }
            }
            for a in 0..k {
                for b in 0..a {
                    g[a * k + b] = g[b * k + a];
                }
            }
            (g, k)
        }
    }

    /// The projection on the first principal component, `M v₁ = s₁ u₁`
    /// (`positions` values), with the sign making its entry of largest
    /// magnitude positive, and `s₁`: the `f64` reference of
    /// `methods::principal_projection`.
    #[cfg(test)]
    pub(crate) fn principal_projection(&self) -> (Vec<f64>, f64) {
        let (p, k) = (self.positions, self.channels);
        let (g, n) = self.gram();
        let (lambda, v) = top_eigenpair(&g, n);
        let s1 = lambda.max(0.0).sqrt();
        let mut projection: Vec<f64> = if n == p {
            // g = M Mᵀ: v is u₁.
            v.iter().map(|u| u * s1).collect()
        } else {
            self.m
                .chunks_exact(k)
                .map(|row| row.iter().zip(&v).map(|(a, b)| a * b).sum())
                .collect()
        };
        let max = projection.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = projection.iter().copied().fold(f64::INFINITY, f64::min);
        if max < -min {
            projection.iter_mut().for_each(|x| *x = -*x);
        }
        debug_assert_eq!(projection.len(), p);
        (projection, s1)
    }

    /// Every singular value of `M`, descending (`min(positions, channels)`).
    pub(crate) fn singular_values(&self) -> Vec<f64> {
        let (g, n) = self.gram();
        eigenvalues(&g, n)
            .into_iter()
            .map(|l| l.max(0.0).sqrt())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A symmetric matrix with known eigenvalues: `Q diag(λ) Qᵀ` with `Q` a
    /// rotation in the (0, 1) plane.
    fn rotated(lambdas: &[f64], angle: f64) -> Vec<f64> {
        let n = lambdas.len();
        let mut q = vec![0.0; n * n];
        for i in 0..n {
            q[i * n + i] = 1.0;
        }
        let (c, s) = (angle.cos(), angle.sin());
        q[0] = c;
        q[1] = -s;
        q[n] = s;
        q[n + 1] = c;
        let mut g = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                g[i * n + j] = (0..n)
                    .map(|k| q[i * n + k] * lambdas[k] * q[j * n + k])
                    .sum();
            }
        }
        g
    }

    #[test]
    fn power_iteration_finds_the_top_pair() {
        let g = rotated(&[5.0, 3.0, 1.0, 0.5], 0.3);
        let (lambda, v) = top_eigenpair(&g, 4);
        assert!((lambda - 5.0).abs() < 1e-10, "{lambda}");
        // v₁ = Q e₀ = (cos, sin, 0, 0) up to sign.
        let dot = v[0] * 0.3f64.cos() + v[1] * 0.3f64.sin();
        assert!((dot.abs() - 1.0).abs() < 1e-10, "{v:?}");
    }

    #[test]
    fn jacobi_finds_every_eigenvalue() {
        let g = rotated(&[1.0, 7.0, 2.0, 0.0], 1.1);
        let values = eigenvalues(&g, 4);
        for (got, want) in values.iter().zip([7.0, 2.0, 1.0, 0.0]) {
            assert!((got - want).abs() < 1e-10, "{values:?}");
        }
    }

    #[test]
    fn projection_is_sign_canonical_and_matches_either_gram() {
        // Three channels over four positions, and its transpose-shaped twin
        // (four channels over three positions) exercise both Gram sides.
        let values = [1.0, 2.0, 0.0, -4.0, 0.5, 0.5, 3.0, 1.0, -2.0, 0.0, 1.0, 1.0];
        for (channels, positions) in [(3, 4), (4, 3)] {
            let c = Centred::new(&values, channels, positions);
            let (p, s1) = c.principal_projection();
            let max = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let min = p.iter().copied().fold(f64::INFINITY, f64::min);
            assert!(max >= -min);
            // |M v₁| = s₁, and s₁ is the largest singular value.
            let norm = l2(&p);
            assert!((norm - s1).abs() < 1e-9 * s1, "{norm} {s1}");
            let all = c.singular_values();
            assert!((all[0] - s1).abs() < 1e-9 * s1, "{all:?} {s1}");
            // Centred: the projection sums to 0 over the positions.
            assert!(p.iter().sum::<f64>().abs() < 1e-9);
        }
    }
}
