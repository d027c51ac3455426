//! The statistics behind every published figure: shares with Wilson intervals, means with
//! Student-t intervals, the required sample size, and tests that tell a real change from noise.
//! Distributions come from `statrs`.

use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, StudentsT};

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A share (0–1) with its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// Wilson score interval for `successes` of `n`; `None` for n = 0. Wilson rather than
/// Clopper–Pearson: its coverage is close to 95 % on average even at small n, where the exact
/// interval is needlessly wide, and it never leaves [0, 1].
pub fn wilson(successes: u64, n: u64) -> Option<Interval> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 * ((p * (1.0 - p) + z2 / (4.0 * n)) / n).sqrt() / (1.0 + z2 / n);
    Some(Interval {
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    })
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom: the multiplier of a two-sided
/// 95 % interval around a mean of df + 1 observations (z when df is infinite or invalid).
pub fn t95(df: f64) -> f64 {
    if !df.is_finite() || df <= 0.0 {
        return Z95;
    }
    if df > LARGE_DF {
        // Cornish–Fisher expansion in 1/df (error < 1e-9 here): statrs inverts the incomplete
        // beta, which gets slow for very large df.
        let z = Z95;
        let (z2, v) = (z * z, df);
        return z
            + z * (z2 + 1.0) / (4.0 * v)
            + z * ((5.0 * z2 + 16.0) * z2 + 3.0) / (96.0 * v * v)
            + z * (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) / (384.0 * v * v * v)
            + z * ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0)
                / (92_160.0 * v * v * v * v);
    }
    StudentsT::new(0.0, 1.0, df)
        .map(|t| t.inverse_cdf(0.975))
        .unwrap_or(Z95)
}

/// Above this many degrees of freedom t is computed from its expansion around the normal.
const LARGE_DF: f64 = 100.0;

/// Standard error of a mean of respondent scores: `n` respondents, `sum` and `sum_sq` of their
/// scores (sample variance, n − 1). `None` below two respondents.
pub fn respondent_se(n: u64, sum: f64, sum_sq: f64) -> Option<f64> {
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let mean = sum / nf;
    let variance = ((sum_sq - nf * mean * mean) / (nf - 1.0)).max(0.0);
    Some((variance / nf).sqrt())
}

/// Student-t interval (df = n − 1) around `estimate` from the respondent-level variance of
/// scores, clamped to [0, 1]. At n = 5 the multiplier is 2.78, not 1.96: a normal interval
/// would be about 29 % too narrow.
pub fn respondent_interval(estimate: f64, n: u64, sum: f64, sum_sq: f64) -> Option<Interval> {
    let se = respondent_se(n, sum, sum_sq)?;
    let half = t95((n - 1) as f64) * se;
    Some(Interval {
        low: (estimate - half).max(0.0),
        high: (estimate + half).min(1.0),
    })
}

/// One-sided exact binomial p-value that `k` of `n` is as high as observed or higher when each
/// is a success with probability `p0`: P(X ≥ k). `None` when there is nothing to test.
pub fn binomial_p_above(k: u64, n: u64, p0: f64) -> Option<f64> {
    if n == 0 || !(0.0..=1.0).contains(&p0) || k > n {
        return None;
    }
    if k == 0 {
        return Some(1.0);
    }
    let b = Binomial::new(p0, n).ok()?;
    Some(b.sf(k - 1).clamp(0.0, 1.0))
}

/// One-sided exact binomial p-value that `k` of `n` is as low as observed or lower: P(X ≤ k).
pub fn binomial_p_below(k: u64, n: u64, p0: f64) -> Option<f64> {
    if n == 0 || !(0.0..=1.0).contains(&p0) || k > n {
        return None;
    }
    let b = Binomial::new(p0, n).ok()?;
    Some(b.cdf(k).clamp(0.0, 1.0))
}

/// One-sided p-value that `k` of `n` is as low as observed or lower when the unit's own rate
/// is not known exactly but drawn from a beta distribution with mean `mean` and standard
/// deviation `spread` (the rates of comparable units): the beta-binomial lower tail. With no
/// spread this is the exact binomial tail.
pub fn beta_binomial_p_below(k: u64, n: u64, mean: f64, spread: f64) -> Option<f64> {
    if n == 0 || k > n || !(mean > 0.0 && mean < 1.0) {
        return None;
    }
    let var = spread * spread;
    // A beta needs var < mean·(1 − mean); a spread that large says nothing is unusual.
    if var.is_nan() || var <= 1e-12 {
        return binomial_p_below(k, n, mean);
    }
    if var >= mean * (1.0 - mean) {
        return Some(1.0);
    }
    use statrs::function::beta::ln_beta;
    use statrs::function::factorial::ln_binomial;
    let total = mean * (1.0 - mean) / var - 1.0;
    let (a, b) = (mean * total, (1.0 - mean) * total);
    let base = ln_beta(a, b);
    let tail: f64 = (0..=k)
        .map(|j| (ln_binomial(n, j) + ln_beta(j as f64 + a, (n - j) as f64 + b) - base).exp())
        .sum();
    Some(tail.clamp(0.0, 1.0))
}

/// Benjamini–Hochberg adjusted p-values (q-values) of a family of tests, in the given order:
/// flagging every test with q ≤ Q keeps the expected share of false flags among the flags at
/// most Q. `None` entries are not part of the family and stay `None`.
pub fn bh_adjust(p: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut tested: Vec<(usize, f64)> = p
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p.clamp(0.0, 1.0))))
        .collect();
    let m = tested.len() as f64;
    tested.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
    let mut out = vec![None; p.len()];
    let mut running: f64 = 1.0;
    for (rank, (i, p)) in tested.iter().enumerate().rev() {
        running = running.min(p * m / (rank + 1) as f64);
        out[*i] = Some(running);
    }
    out
}

/// Required sample for a population of `n_population` with margin `e`: n = N / (1 + N·e²),
/// rounded up.
pub fn required_sample(n_population: u64, e: f64) -> u64 {
    if n_population == 0 {
        return 0;
    }
    let n = n_population as f64;
    (n / (1.0 + n * e * e)).ceil() as u64
}

/// Two-sided p-value of the difference between two independent shares (pooled z-test).
pub fn two_proportion_p(s1: u64, n1: u64, s2: u64, n2: u64) -> Option<f64> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let pooled = (s1 + s2) as f64 / (n1f + n2f);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    if se == 0.0 {
        return Some(if s1 as f64 / n1f == s2 as f64 / n2f {
            1.0
        } else {
            0.0
        });
    }
    let z = (s1 as f64 / n1f - s2 as f64 / n2f) / se;
    Some(2.0 * (1.0 - normal_cdf(z.abs())))
}

/// Two-sided p-value of the difference of two independent estimates with standard errors
/// `se_a` and `se_b` on `df_a` and `df_b` degrees of freedom: Welch's t-test
/// (Welch–Satterthwaite degrees of freedom; infinite df gives the normal test).
pub fn difference_p(a: f64, se_a: f64, df_a: f64, b: f64, se_b: f64, df_b: f64) -> Option<f64> {
    let (va, vb) = (se_a * se_a, se_b * se_b);
    let se = (va + vb).sqrt();
    if !se.is_finite() || se == 0.0 {
        return None;
    }
    let t = ((a - b) / se).abs();
    let part = |v: f64, df: f64| {
        if df.is_finite() && df > 0.0 {
            v * v / df
        } else {
            0.0
        }
    };
    let denominator = part(va, df_a) + part(vb, df_b);
    let df = if denominator > 0.0 {
        (va + vb).powi(2) / denominator
    } else {
        f64::INFINITY
    };
    let upper = if df.is_finite() && df <= 1e5 {
        StudentsT::new(0.0, 1.0, df).ok()?.sf(t)
    } else {
        1.0 - normal_cdf(t)
    };
    Some((2.0 * upper).clamp(0.0, 1.0))
}

/// Standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(-x / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() < tol
    }

    #[test]
    fn wilson_matches_hand_computation() {
        // 8 of 10: centre (0.8 + 0.19207)/1.38415 = 0.71678, half 0.25067 → [0.4902, 0.9433].
        let ci = wilson(8, 10).unwrap();
        assert!(close(ci.low, 0.4902, 1e-4), "{ci:?}");
        assert!(close(ci.high, 0.9433, 1e-4), "{ci:?}");
        let all = wilson(5, 5).unwrap();
        assert!(close(all.high, 1.0, 1e-12) && all.low > 0.5);
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn required_sample_follows_the_formula() {
        assert_eq!(required_sample(400, 0.05), 200);
        assert_eq!(required_sample(10_000, 0.05), 385);
        assert_eq!(required_sample(1_000_000, 0.05), 400);
        assert_eq!(required_sample(0, 0.05), 0);
        assert_eq!(required_sample(1, 0.05), 1);
    }

    #[test]
    fn normal_cdf_and_tests() {
        assert!(close(normal_cdf(0.0), 0.5, 1e-7));
        assert!(close(normal_cdf(1.959_964), 0.975, 1e-6));
        // 90/100 vs 70/100: pooled 0.8, se 0.05657, z 3.5355 → p ≈ 0.000407.
        let p = two_proportion_p(90, 100, 70, 100).unwrap();
        assert!(close(p, 0.000407, 2e-5), "{p}");
        assert!(two_proportion_p(50, 100, 51, 100).unwrap() > 0.5);
    }

    #[test]
    fn respondent_interval_uses_score_variance_and_t() {
        // scores 1,1,0,0 → mean .5, var 1/3, se .2887, t(3) = 3.182 → clamped to [0, 1]
        let ci = respondent_interval(0.5, 4, 2.0, 2.0).unwrap();
        assert!(close(ci.low, 0.0, 1e-9) && close(ci.high, 1.0, 1e-9));
        let ci = respondent_interval(0.5, 400, 200.0, 200.0).unwrap();
        assert!(close(
            ci.high - 0.5,
            t95(399.0) * (0.5f64 * 0.5 * 400.0 / 399.0 / 400.0).sqrt(),
            1e-9
        ));
        // n = 5, scores 1,1,1,0,0: mean .6, var .3, se .24495; t(4) = 2.7764 → half .68009,
        // where z would give .48009 (29 % narrower).
        let ci = respondent_interval(0.6, 5, 3.0, 3.0).unwrap();
        assert!(close(ci.low, 0.0, 1e-9), "{ci:?}");
        // n = 5, mean .5, var (1.3 − 1.25)/4 = .0125, se .05 → half 2.7764 × .05 = .13882
        let ci = respondent_interval(0.5, 5, 2.5, 1.3).unwrap();
        let half = (ci.high - ci.low) / 2.0;
        assert!(close(half, 0.138_822, 1e-5), "{ci:?}");
        assert_eq!(respondent_interval(0.5, 1, 1.0, 1.0), None);
    }

    #[test]
    fn t_quantiles_match_tables() {
        assert!(close(t95(4.0), 2.776_445, 1e-5), "{}", t95(4.0));
        assert!(close(t95(1.0), 12.706_205, 1e-4), "{}", t95(1.0));
        assert!(close(t95(29.0), 2.045_230, 1e-5), "{}", t95(29.0));
        assert!(close(t95(100.0), 1.983_972, 1e-5), "{}", t95(100.0));
        assert!(close(t95(101.0), 1.983_731, 1e-5), "{}", t95(101.0));
        assert!(close(t95(1000.0), 1.962_339, 1e-5), "{}", t95(1000.0));
        assert!(close(t95(1e9), Z95, 1e-5));
        // Large samples stay fast (a province's index has thousands of respondents).
        let started = std::time::Instant::now();
        for n in 2..3000 {
            t95(n as f64);
        }
        let p = difference_p(80.0, 1.0, 5000.0, 78.0, 1.2, 40.0).unwrap();
        assert!(p > 0.1 && p < 0.3, "{p}");
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
        assert_eq!(t95(f64::INFINITY), Z95);
    }

    #[test]
    fn exact_binomial_tails_at_small_counts() {
        // The cases: 2 same-device answers of 10 and 3 of 30 at a 2 % baseline.
        let p = binomial_p_above(2, 10, 0.02).unwrap();
        assert!(close(p, 0.016_178, 1e-5), "{p}");
        let p = binomial_p_above(3, 30, 0.02).unwrap();
        assert!(close(p, 0.021_718, 1e-5), "{p}");
        assert_eq!(binomial_p_above(0, 10, 0.02), Some(1.0));
        assert_eq!(binomial_p_above(1, 0, 0.02), None);
        // P(X ≤ 0 | 10, .5) = 1/1024
        let p = binomial_p_below(0, 10, 0.5).unwrap();
        assert!(close(p, 1.0 / 1024.0, 1e-9), "{p}");
        assert_eq!(binomial_p_below(10, 10, 0.5), Some(1.0));
    }

    #[test]
    fn beta_binomial_widens_the_binomial_tail() {
        // Mean .4, sd .1 → Beta(9.2, 13.8); P(X ≤ 10 of 50) = 0.052687 (summed by hand).
        let p = beta_binomial_p_below(10, 50, 0.4, 0.1).unwrap();
        assert!(close(p, 0.052_687, 1e-5), "{p}");
        let exact = binomial_p_below(10, 50, 0.4).unwrap();
        assert!(exact < p / 5.0, "{exact} {p}");
        assert_eq!(beta_binomial_p_below(10, 50, 0.4, 0.0), Some(exact));
        assert_eq!(beta_binomial_p_below(10, 50, 0.4, 0.6), Some(1.0));
    }

    #[test]
    fn benjamini_hochberg_adjusts_in_order() {
        let q = bh_adjust(&[Some(0.01), Some(0.04), None, Some(0.03), Some(0.005)]);
        let want = [Some(0.02), Some(0.04), None, Some(0.04), Some(0.02)];
        for (q, w) in q.iter().zip(want) {
            match (q, w) {
                (Some(q), Some(w)) => assert!(close(*q, w, 1e-12), "{q} {w}"),
                (q, w) => assert_eq!(*q, w),
            }
        }
        assert!(bh_adjust(&[]).is_empty());
    }

    #[test]
    fn welch_difference_uses_t_at_small_n() {
        // Equal se .05, difference .15: t = 2.1213; df = 2·.0025² / (2·.0025²/4) = 8 → p = .0667
        let p = difference_p(0.75, 0.05, 4.0, 0.6, 0.05, 4.0).unwrap();
        assert!(close(p, 0.066_7, 5e-4), "{p}");
        let z = difference_p(0.75, 0.05, f64::INFINITY, 0.6, 0.05, f64::INFINITY).unwrap();
        assert!(close(z, 2.0 * (1.0 - normal_cdf(2.121_32)), 1e-5), "{z}");
        assert_eq!(difference_p(0.5, 0.0, 3.0, 0.5, 0.0, 3.0), None);
    }
}
