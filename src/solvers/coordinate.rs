//! Coordinate descent in Gram form, one example at a time (examples in parallel):
//! greedy CoD (Gregor & LeCun 2010) and the exact solver (cyclic coordinate descent with an
//! active-set Newton step).
//!
//! Both keep `c = Dᵀ(x − Dz) = b − Gz`; changing `z_j` by `δ` costs one axpy
//! `c ← c − δ G_j`. The coordinate minimiser is `z_j ← shrink_{λ_j/G_jj}(z_j + c_j/G_jj)`.

use super::options::Penalty;
use super::proximal::{finish_stats, prepare};
use super::{Dictionary, LassoOptions, LassoStats};
use crate::kernels::{shrink, Shrink, Theta};
use crate::linalg::{axpy, gemm_threads, Mat};
use crate::Result;

#[inline]
fn coord_shrink(v: f32, t: f32, non_negative: bool) -> f32 {
    if non_negative {
        (v - t).max(0.0)
    } else {
        v - v.max(-t).min(t)
    }
}

struct Problem<'a> {
    g: &'a Mat,
    diag: Vec<f32>,
    lambda: &'a [f32],
    /// `λ_j (1 + KKT_RTOL)`: the violation threshold of the active-set solver.
    lambda_tol: Vec<f32>,
    non_negative: bool,
    max_iters: usize,
    tol: f64,
}

/// Runs `per_row(problem, b_i, xx_i, z_i, c_i) -> iterations` over every example (see
/// [`for_each_row_pair`]) and returns the mean of the results.
fn for_each_example(
    p: &Problem<'_>,
    b: &Mat,
    xx: &[f64],
    z: &mut Mat,
    c: &mut Mat,
    per_row: impl Fn(&Problem<'_>, &[f32], f64, &mut [f32], &mut [f32]) -> f64 + Sync,
) -> f64 {
    let rows = z.nrows();
    for_each_row_pair(z, c, |i, zr, cr| per_row(p, b.row(i), xx[i], zr, cr)) / rows.max(1) as f64
}

/// Calls `f(i, a_i, b_i)` for every row i of two matrices with the same number of rows, on
/// the GEMM thread count, handing out blocks of rows dynamically (per-row costs differ);
/// returns the sum of the results. Each row's result depends only on its own data, so
/// nothing depends on the thread count.
pub(crate) fn for_each_row_pair(
    a: &mut Mat,
    b: &mut Mat,
    f: impl Fn(usize, &mut [f32], &mut [f32]) -> f64 + Sync,
) -> f64 {
    const BLOCK: usize = 8;
    let (rows, na, nb) = (a.nrows(), a.ncols(), b.ncols());
    assert_eq!(
        rows,
        b.nrows(),
        "row counts {} and {} differ",
        rows,
        b.nrows()
    );
    if rows == 0 || na == 0 || nb == 0 {
        return 0.0;
    }
    let threads = gemm_threads().min(rows.div_ceil(BLOCK));
    type RowBlock<'a> = std::sync::Mutex<(usize, &'a mut [f32], &'a mut [f32])>;
    let blocks: Vec<RowBlock<'_>> = a
        .as_mut_slice()
        .chunks_mut(BLOCK * na)
        .zip(b.as_mut_slice().chunks_mut(BLOCK * nb))
        .enumerate()
        .map(|(k, (ac, bc))| std::sync::Mutex::new((k * BLOCK, ac, bc)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut total = 0.0;
        loop {
            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(block) = blocks.get(k) else { break };
            let mut guard = block.lock().expect("row block poisoned");
            let (first, ac, bc) = &mut *guard;
            for (r, (ar, br)) in ac.chunks_mut(na).zip(bc.chunks_mut(nb)).enumerate() {
                total += f(*first + r, ar, br);
            }
        }
        total
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mine = work();
        mine + handles
            .into_iter()
            .map(|h| h.join().expect("row worker panicked"))
            .sum::<f64>()
    })
}

/// `c ← b − G z` for one example, touching only the non-zeros of z.
fn residual_correlation(g: &Mat, b: &[f32], z: &[f32], c: &mut [f32]) {
    c.copy_from_slice(b);
    for (j, &zj) in z.iter().enumerate() {
        if zj != 0.0 {
            axpy(-zj, g.row(j), c);
        }
    }
}

fn setup<'a>(dict: &'a Dictionary, lambda: &'a [f32], opts: &LassoOptions) -> Problem<'a> {
    let g = dict.gram();
    Problem {
        g,
        diag: (0..g.nrows()).map(|j| g[(j, j)]).collect(),
        lambda,
        lambda_tol: lambda.iter().map(|l| l * (1.0 + KKT_RTOL as f32)).collect(),
        non_negative: opts.non_negative,
        max_iters: opts.max_iters,
        tol: opts.tol,
    }
}

/// Greedy coordinate descent (CoD, Gregor & LeCun 2010): at each step update the single
/// coordinate whose minimiser moves furthest. `max_iters × n` steps at most per example;
/// stops early when the relative duality gap (checked every n steps) is below `tol`.
/// `iterations` in the result is the mean number of steps per example divided by n.
pub fn cod(dict: &Dictionary, x: &Mat, z: &mut Mat, opts: &LassoOptions) -> Result<LassoStats> {
    let lambda = opts.lambdas(dict.n_atoms())?;
    let (b, xx) = prepare(dict, x, z)?;
    let p = setup(dict, &lambda, opts);
    let n = dict.n_atoms();
    let mut c = Mat::zeros(z.nrows(), n);
    let steps = for_each_example(&p, &b, &xx, z, &mut c, |p, b, xx, z, c| {
        let n = z.len();
        let pen = Penalty::L1 {
            lambda: p.lambda,
            non_negative: p.non_negative,
        };
        let kind = if p.non_negative {
            Shrink::NonNegative
        } else {
            Shrink::Signed
        };
        let scaled: Vec<f32> = p.lambda.iter().zip(&p.diag).map(|(l, d)| l / d).collect();
        let mut v = vec![0.0; n];
        let mut zbar = vec![0.0; n];
        residual_correlation(p.g, b, z, c);
        let mut step = 0usize;
        while step < p.max_iters * n {
            // z̄ = shrink(z + c/diag): every coordinate's minimiser, in one SIMD pass.
            for j in 0..n {
                v[j] = z[j] + c[j] / p.diag[j];
            }
            shrink(kind, Theta::PerUnit(&scaled), &v, &mut zbar);
            let (k, dk) = (0..n)
                .map(|j| (j, zbar[j] - z[j]))
                .fold(
                    (0, 0.0f32),
                    |a, (j, d)| if d.abs() > a.1.abs() { (j, d) } else { a },
                );
            if dk == 0.0 {
                break;
            }
            z[k] += dk;
            axpy(-dk, p.g.row(k), c);
            step += 1;
            if p.tol > 0.0 && step % n == 0 {
                let (pr, gap) = pen.objective_and_gap(xx, z, b, c);
                if gap <= p.tol * pr {
                    break;
                }
            }
        }
        step as f64 / n as f64
    });
    let pen = Penalty::L1 {
        lambda: &lambda,
        non_negative: opts.non_negative,
    };
    Ok(finish_stats(&pen, &xx, z, &b, &c, steps))
}

/// The exact solver: an active-set method in the manner of feature-sign search
/// (Lee, Battle, Raina & Ng 2007), in Gram form with an incrementally grown Cholesky factor.
///
/// Repeat: take the inactive coordinate that violates `|c_j| ≤ λ_j` most and move it to its
/// 1-D minimiser (so it enters with a consistent sign); then minimise the quadratic on the
/// active set with its signs fixed (`G_AA w = b_A − λ_A ∘ sign_A`, Cholesky in f64). If the
/// minimiser flips a sign, move to the first sign change (the objective decreases along the
/// way), drop that coordinate and solve again. When no coordinate violates its optimality
/// condition (checked with `c` recomputed in f64) the codes are the exact optimum up to
/// rounding. `max_iters` bounds the activations per example; `iterations` is their mean.
pub fn exact(dict: &Dictionary, x: &Mat, z: &mut Mat, opts: &LassoOptions) -> Result<LassoStats> {
    let lambda = opts.lambdas(dict.n_atoms())?;
    let (b, xx) = prepare(dict, x, z)?;
    let p = setup(dict, &lambda, opts);
    let n = dict.n_atoms();
    let mut c = Mat::zeros(z.nrows(), n);
    let activations = for_each_example(&p, &b, &xx, z, &mut c, |p, b, xx, z, c| {
        ActiveSet::default().solve(p, b, xx, z, c)
    });
    let pen = Penalty::L1 {
        lambda: &lambda,
        non_negative: opts.non_negative,
    };
    Ok(finish_stats(&pen, &xx, z, &b, &c, activations))
}

/// Relative tolerance on `|c_j| ≤ λ_j` for the inactive coordinates: beyond the f32
/// rounding of `c`, and a violation this small changes the objective only at second order.
const KKT_RTOL: f64 = 1e-5;

/// The inactive coordinate (`z_j = 0`) with the largest excess `|c_j| − λ'_j > 0` (`c_j − λ'_j`
/// when z ≥ 0), or `None` if none exceeds its threshold. SIMD: one pass for the maximum,
/// a second to locate it.
fn most_violating(c: &[f32], z: &[f32], lambda_tol: &[f32], non_negative: bool) -> Option<usize> {
    use crate::linalg::load8;
    use wide::{f32x8, CmpEq};
    let n = c.len();
    let n8 = n / 8 * 8;
    let excess_v = |j: usize| {
        let cv = load8(&c[j..]);
        let cv = if non_negative { cv } else { cv.abs() };
        let inactive = load8(&z[j..]).cmp_eq(f32x8::ZERO);
        // Active lanes get −∞ so they never win.
        inactive.blend(
            cv - load8(&lambda_tol[j..]),
            f32x8::splat(f32::NEG_INFINITY),
        )
    };
    let excess_s = |j: usize| {
        if z[j] != 0.0 {
            return f32::NEG_INFINITY;
        }
        (if non_negative { c[j] } else { c[j].abs() }) - lambda_tol[j]
    };
    let mut best = f32x8::splat(f32::NEG_INFINITY);
    let mut j = 0;
    while j < n8 {
        best = best.max(excess_v(j));
        j += 8;
    }
    let mut m = best
        .to_array()
        .into_iter()
        .fold(f32::NEG_INFINITY, f32::max);
    for j in n8..n {
        m = m.max(excess_s(j));
    }
    if !(m > 0.0) {
        return None;
    }
    let mv = f32x8::splat(m);
    let mut j = 0;
    while j < n8 {
        let hits = excess_v(j).cmp_eq(mv).move_mask();
        if hits != 0 {
            return Some(j + hits.trailing_zeros() as usize);
        }
        j += 8;
    }
    (n8..n).find(|&j| excess_s(j) == m)
}

/// Workspace of the active-set solver for one example.
#[derive(Default)]
struct ActiveSet {
    /// Active coordinates and their signs.
    active: Vec<(u32, bool)>,
    /// Lower-triangular Cholesky factor of `G_AA`, row-major with stride `active.len()`
    /// at the time of the last rebuild… stored densely as rows of growing length.
    chol: Vec<Vec<f64>>,
    w: Vec<f64>,
    tmp: Vec<f64>,
    exact_c: Vec<f64>,
}

impl ActiveSet {
    fn solve(&mut self, p: &Problem<'_>, b: &[f32], xx: f64, z: &mut [f32], c: &mut [f32]) -> f64 {
        let n = z.len();
        residual_correlation(p.g, b, z, c);
        // Safeguard: never return codes worse than the warm start. An optimal result never
        // is (the lasso is convex); only a run stopped by the activation budget on a badly
        // conditioned problem can be, so the start is kept only for that case.
        let pen = Penalty::L1 {
            lambda: p.lambda,
            non_negative: p.non_negative,
        };
        let warm = z.iter().any(|&v| v != 0.0);
        let (start, f_start) = if warm {
            (z.to_vec(), pen.objective_and_gap(xx, z, b, c).0)
        } else {
            (Vec::new(), 0.5 * xx)
        };
        self.active.clear();
        self.active.extend(
            z.iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(|(j, v)| (j as u32, *v > 0.0)),
        );
        let mut activations = 0usize;
        let mut newton_pending = !self.active.is_empty();
        if newton_pending && !self.rebuild(p) {
            self.active.clear();
            z.iter_mut().for_each(|v| *v = 0.0);
            c.copy_from_slice(b);
            newton_pending = false;
        }
        // The loop ends on optimality or after max_iters activations (plus refreshes).
        let mut optimal = false;
        for _guard in 0..(p.max_iters + 2 * n + 10) {
            if newton_pending {
                self.newton_steps(p, b, z, c);
                newton_pending = false;
            }
            // The most violating inactive coordinate.
            let j = match most_violating(c, z, &p.lambda_tol, p.non_negative) {
                Some(j) if activations < p.max_iters => j,
                Some(_) => break,
                None => {
                    // Looks optimal with the running f32 `c`: confirm with c in f64.
                    if self.refresh_and_check(p, b, z, c) {
                        optimal = true;
                        break;
                    }
                    continue;
                }
            };
            activations += 1;
            let zj = coord_shrink(c[j] / p.diag[j], p.lambda[j] / p.diag[j], p.non_negative);
            if zj == 0.0 {
                continue;
            }
            self.active.push((j as u32, zj > 0.0));
            if !self.append(p) {
                // G_AA would become singular: atom j is (numerically) a combination of the
                // active ones, e.g. a duplicate. Leave it out; its correlation then equals
                // that of the atoms it duplicates, so it stops violating once they settle
                // (or the activation budget ends the loop).
                self.active.pop();
                continue;
            }
            z[j] = zj;
            axpy(-zj, p.g.row(j), c);
            newton_pending = true;
        }
        if !optimal {
            self.refresh_and_check(p, b, z, c);
            if pen.objective_and_gap(xx, z, b, c).0 > f_start {
                if warm {
                    z.copy_from_slice(&start);
                } else {
                    z.fill(0.0);
                }
                residual_correlation(p.g, b, z, c);
            }
        }
        activations as f64
    }

    /// Newton steps with sign-change line search until the active set's minimiser keeps
    /// every sign; then `c` is recomputed for the new codes.
    fn newton_steps(&mut self, p: &Problem<'_>, b: &[f32], z: &mut [f32], c: &mut [f32]) {
        while !self.active.is_empty() {
            self.solve_active(p, b);
            let mut first: Option<(usize, f64)> = None;
            for (a, (&(j, pos), &wa)) in self.active.iter().zip(&self.w).enumerate() {
                if (wa > 0.0) != pos || wa == 0.0 {
                    let za = z[j as usize] as f64;
                    // The first point of the segment z → w where this coordinate is zero
                    // (t = 0 if it already is).
                    let t = if za == wa {
                        0.0
                    } else {
                        (za / (za - wa)).clamp(0.0, 1.0)
                    };
                    if first.map_or(true, |(_, tb)| t < tb) {
                        first = Some((a, t));
                    }
                }
            }
            let t = first.map_or(1.0, |(_, t)| t);
            for (&(j, _), &wa) in self.active.iter().zip(&self.w) {
                let j = j as usize;
                z[j] = (z[j] as f64 + t * (wa - z[j] as f64)) as f32;
            }
            match first {
                None => break,
                Some((a, _)) => {
                    z[self.active[a].0 as usize] = 0.0;
                    self.active.remove(a);
                    if !self.rebuild(p) {
                        break;
                    }
                }
            }
        }
        // c from scratch over the active set (as cheap as tracking every Newton move, and
        // without drift); z is zero off the active set.
        c.copy_from_slice(b);
        for &(j, _) in &self.active {
            axpy(-z[j as usize], p.g.row(j as usize), c);
        }
    }

    /// `w ← G_AA⁻¹ (b_A − λ_A ∘ sign_A)` with the current factor.
    fn solve_active(&mut self, p: &Problem<'_>, b: &[f32]) {
        let s = self.active.len();
        self.w.clear();
        for &(j, pos) in &self.active {
            let sign = if pos { 1.0 } else { -1.0 };
            self.w
                .push(b[j as usize] as f64 - p.lambda[j as usize] as f64 * sign);
        }
        for i in 0..s {
            let row = &self.chol[i];
            let mut v = self.w[i];
            for k in 0..i {
                v -= row[k] * self.w[k];
            }
            self.w[i] = v / row[i];
        }
        for i in (0..s).rev() {
            let mut v = self.w[i];
            for k in i + 1..s {
                v -= self.chol[k][i] * self.w[k];
            }
            self.w[i] = v / self.chol[i][i];
        }
    }

    /// Appends the last active coordinate to the Cholesky factor (O(s²)); false if the
    /// extended matrix is not numerically positive definite.
    fn append(&mut self, p: &Problem<'_>) -> bool {
        let s = self.active.len() - 1;
        let j = self.active[s].0 as usize;
        let grow = p.g.row(j);
        self.tmp.clear();
        for a in 0..s {
            let mut v = grow[self.active[a].0 as usize] as f64;
            let row = &self.chol[a];
            for k in 0..a {
                v -= row[k] * self.tmp[k];
            }
            self.tmp.push(v / row[a]);
        }
        let d = grow[j] as f64 - self.tmp.iter().map(|v| v * v).sum::<f64>();
        if d <= 1e-9 * grow[j] as f64 {
            return false;
        }
        let mut row = std::mem::take(&mut self.tmp);
        row.push(d.sqrt());
        if self.chol.len() > s {
            self.chol.truncate(s);
        }
        self.chol.push(row);
        true
    }

    /// Refactors `G_AA` from scratch (after a removal).
    fn rebuild(&mut self, p: &Problem<'_>) -> bool {
        let active = std::mem::take(&mut self.active);
        self.chol.clear();
        let mut ok = true;
        for k in 0..active.len() {
            self.active.push(active[k]);
            if !self.append(p) {
                ok = false;
                break;
            }
        }
        self.active = active;
        ok
    }

    /// Recomputes `c = b − G z` in f64 (the running f32 update drifts) and checks every
    /// coordinate's optimality condition.
    fn refresh_and_check(&mut self, p: &Problem<'_>, b: &[f32], z: &[f32], c: &mut [f32]) -> bool {
        self.exact_c.clear();
        self.exact_c.extend(b.iter().map(|&v| v as f64));
        for (j, &zj) in z.iter().enumerate() {
            if zj != 0.0 {
                for (t, &gv) in self.exact_c.iter_mut().zip(p.g.row(j)) {
                    *t -= zj as f64 * gv as f64;
                }
            }
        }
        let mut ok = true;
        for j in 0..z.len() {
            let cj = self.exact_c[j];
            c[j] = cj as f32;
            let lj = p.lambda[j] as f64;
            let tol = lj * KKT_RTOL + 1e-7;
            ok &= if z[j] > 0.0 {
                (cj - lj).abs() <= 10.0 * tol
            } else if z[j] < 0.0 {
                (cj + lj).abs() <= 10.0 * tol
            } else if p.non_negative {
                cj <= lj + tol
            } else {
                cj.abs() <= lj + tol
            };
        }
        ok
    }
}
