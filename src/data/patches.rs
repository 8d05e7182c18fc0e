//! Random square patches from grayscale images.

use super::pgm::GrayImage;
use crate::linalg::Mat;
use crate::{Error, Result};
use rand::Rng;

/// Samples `count` random `size × size` patches (rows of the result, row-major pixels),
/// choosing the image uniformly and the position uniformly inside it.
///
/// # Errors
/// If there are no images or every image is smaller than the patch, an image whose pixel
/// count is not its width times its height, or a result too large to allocate.
pub fn sample_patches<R: Rng + ?Sized>(
    images: &[GrayImage],
    size: usize,
    count: usize,
    rng: &mut R,
) -> Result<Mat> {
    if let Some((i, im)) = images
        .iter()
        .enumerate()
        .find(|(_, im)| im.width.checked_mul(im.height) != Some(im.pixels.len()))
    {
        return Err(Error::param(
            "images",
            format!(
                "image {i} is {}×{} but holds {} pixels",
                im.width,
                im.height,
                im.pixels.len()
            ),
        ));
    }
    size.checked_mul(size)
        .and_then(|p| p.checked_mul(count))
        .filter(|&v| v <= isize::MAX as usize / 4)
        .ok_or_else(|| {
            Error::param(
                "patch",
                format!("{count} patches of {size}×{size} do not fit in memory"),
            )
        })?;
    let usable: Vec<&GrayImage> = images
        .iter()
        .filter(|im| im.width >= size && im.height >= size)
        .collect();
    if usable.is_empty() || size == 0 {
        return Err(Error::param(
            "patch",
            format!("no image is at least {size}×{size}"),
        ));
    }
    let mut out = Mat::zeros(count, size * size);
    for row in out.rows_mut() {
        let im = usable[rng.gen_range(0..usable.len())];
        let x0 = rng.gen_range(0..=im.width - size);
        let y0 = rng.gen_range(0..=im.height - size);
        for dy in 0..size {
            let src = &im.pixels[(y0 + dy) * im.width + x0..][..size];
            row[dy * size..(dy + 1) * size].copy_from_slice(src);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_come_from_the_image_and_are_seeded() {
        let im = GrayImage {
            width: 5,
            height: 4,
            pixels: (0..20).map(|v| v as f32).collect(),
        };
        let mut r1 = crate::rng::seeded(9);
        let mut r2 = crate::rng::seeded(9);
        let a = sample_patches(std::slice::from_ref(&im), 2, 10, &mut r1).unwrap();
        let b = sample_patches(std::slice::from_ref(&im), 2, 10, &mut r2).unwrap();
        assert_eq!(a, b);
        for row in a.rows() {
            assert_eq!(row[1], row[0] + 1.0);
            assert_eq!(row[2], row[0] + 5.0);
        }
        assert!(sample_patches(std::slice::from_ref(&im), 6, 1, &mut r1).is_err());
        assert!(sample_patches(std::slice::from_ref(&im), 1 << 40, 1 << 40, &mut r1).is_err());
        let mut short = im;
        short.pixels.pop();
        assert!(sample_patches(&[short], 2, 1, &mut r1).is_err());
    }
}
