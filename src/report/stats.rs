//! The statistics behind every published figure: shares with Wilson intervals, means, the
//! required sample size, and tests that tell a real change from noise.

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A share (0–1) with its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// Wilson score interval for `successes` of `n`; `None` for n = 0.
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

/// Normal interval around `estimate` from the respondent-level variance of scores, clamped to
/// [0, 1]. `n` respondents, `sum` and `sum_sq` of their scores.
pub fn respondent_interval(estimate: f64, n: u64, sum: f64, sum_sq: f64) -> Option<Interval> {
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let mean = sum / nf;
    let variance = ((sum_sq - nf * mean * mean) / (nf - 1.0)).max(0.0);
    let half = Z95 * (variance / nf).sqrt();
    Some(Interval {
        low: (estimate - half).max(0.0),
        high: (estimate + half).min(1.0),
    })
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

/// Two-sided p-value of the difference of two estimates with known standard errors.
pub fn difference_p(a: f64, se_a: f64, b: f64, se_b: f64) -> Option<f64> {
    let se = (se_a * se_a + se_b * se_b).sqrt();
    if !se.is_finite() || se == 0.0 {
        return None;
    }
    Some(2.0 * (1.0 - normal_cdf(((a - b) / se).abs())))
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 erf, error < 1.5e-7).
pub fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-(x * x) / 2.0).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
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
    fn respondent_interval_uses_score_variance() {
        // scores 1,1,0,0 → mean .5, var 1/3, se .2887 → half .5658
        let ci = respondent_interval(0.5, 4, 2.0, 2.0).unwrap();
        assert!(close(ci.low, 0.0, 1e-9) && close(ci.high, 1.0, 1e-9));
        let ci = respondent_interval(0.5, 400, 200.0, 200.0).unwrap();
        assert!(close(
            ci.high - 0.5,
            Z95 * (0.5f64 * 0.5 * 400.0 / 399.0 / 400.0).sqrt(),
            1e-9
        ));
    }
}
