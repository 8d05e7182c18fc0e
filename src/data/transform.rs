//! Geometric transforms of single-channel images (row-major `h × w`), for invariance
//! measurements: integer shifts and small rotations, with zero fill.

/// `img` shifted by `(dy, dx)` pixels (positive = down / right); pixels shifted in are 0.
///
/// # Panics
/// If `img.len() != h·w`.
#[track_caller]
pub fn shift_image(img: &[f32], h: usize, w: usize, dy: isize, dx: isize) -> Vec<f32> {
    assert_eq!(
        img.len(),
        h * w,
        "image of {} values is not {h}×{w}",
        img.len()
    );
    let mut out = vec![0.0; h * w];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let (sy, sx) = (y - dy, x - dx);
            if sy >= 0 && sx >= 0 && sy < h as isize && sx < w as isize {
                out[(y as usize) * w + x as usize] = img[(sy as usize) * w + sx as usize];
            }
        }
    }
    out
}

/// `img` rotated by `degrees` (counter-clockwise) about its centre, bilinear
/// interpolation; samples from outside the image are 0.
///
/// # Panics
/// If `img.len() != h·w`.
#[track_caller]
pub fn rotate_image(img: &[f32], h: usize, w: usize, degrees: f32) -> Vec<f32> {
    assert_eq!(
        img.len(),
        h * w,
        "image of {} values is not {h}×{w}",
        img.len()
    );
    let (s, c) = degrees.to_radians().sin_cos();
    let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
    let at = |y: isize, x: isize| -> f32 {
        if y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w {
            img[y as usize * w + x as usize]
        } else {
            0.0
        }
    };
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        for x in 0..w {
            // inverse map: source = R(−θ)(p − c) + c
            let (py, px) = (y as f32 - cy, x as f32 - cx);
            let sx = c * px - s * py + cx;
            let sy = s * px + c * py + cy;
            let (y0, x0) = (sy.floor(), sx.floor());
            let (fy, fx) = (sy - y0, sx - x0);
            let (y0, x0) = (y0 as isize, x0 as isize);
            out[y * w + x] = (1.0 - fy) * ((1.0 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
                + fy * ((1.0 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_move_pixels_and_zero_rotation_is_identity() {
        let img: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let s = shift_image(&img, 3, 4, 1, -1);
        assert_eq!(&s[..4], &[0.0; 4]);
        assert_eq!(s[4], 1.0); // (1, 0) ← (0, 1)
        assert_eq!(s[7], 0.0); // shifted in from the right
        assert_eq!(rotate_image(&img, 3, 4, 0.0), img);
        // 90° on a square image is an exact permutation
        let sq: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let r = rotate_image(&sq, 3, 3, 90.0);
        let mut sorted = r.clone();
        sorted.sort_by(f32::total_cmp);
        for (a, b) in sorted.iter().zip(&sq) {
            assert!((a - b).abs() < 1e-5);
        }
        assert!((r[4] - 4.0).abs() < 1e-6);
    }
}
