//! Layout kernels for "valid" convolutions through GEMM: `im2col` gathers every kernel
//! placement of a batch of images into the rows of a patch matrix, `col2im_add` scatters
//! patch rows back (the adjoint, used by the "full" convolution of a decoder and by the
//! backward pass).
//!
//! **Layout.** Images are stored channels-last (`H × W × C`, index `(y·W + x)·C + c`), one
//! image per row of a batch. A patch row for the placement at `(oy, ox)` lists the kernel
//! window in the same order `(a, b, c)` → `(a·k + b)·C + c`, so each of its `k` kernel rows
//! is one contiguous copy of `k·C` values. Placements are numbered `oy·out_w + ox`, and a
//! batch's patch matrix has `B·positions` rows (image-major). A GEMM of the patch matrix
//! with `maps × patch_len` filters then gives codes in the same channels-last layout
//! (`out_h × out_w × maps`), which is what the next layer reads.

use crate::simd::{dispatch, Isa, Kernel, Simd};
use crate::{Error, Result};

/// Geometry of a valid convolution with a square kernel and stride 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Input channels.
    pub channels: usize,
    /// Kernel side k.
    pub kernel: usize,
}

impl ConvShape {
    /// A checked shape.
    ///
    /// # Errors
    /// If a size is 0 or the kernel is larger than the image.
    pub fn new(height: usize, width: usize, channels: usize, kernel: usize) -> Result<Self> {
        if height == 0 || width == 0 || channels == 0 || kernel == 0 {
            return Err(Error::param(
                "conv shape",
                format!("{height}×{width}×{channels}, kernel {kernel}: sizes must be ≥ 1"),
            ));
        }
        if kernel > height || kernel > width {
            return Err(Error::param(
                "kernel",
                format!("{kernel} exceeds the {height}×{width} input"),
            ));
        }
        Ok(ConvShape {
            height,
            width,
            channels,
            kernel,
        })
    }

    /// Output height `H − k + 1`.
    pub fn out_h(&self) -> usize {
        self.height + 1 - self.kernel
    }
    /// Output width `W − k + 1`.
    pub fn out_w(&self) -> usize {
        self.width + 1 - self.kernel
    }
    /// Kernel placements per image.
    pub fn positions(&self) -> usize {
        self.out_h() * self.out_w()
    }
    /// Values in one patch, `k·k·C`.
    pub fn patch_len(&self) -> usize {
        self.kernel * self.kernel * self.channels
    }
    /// Values in one image, `H·W·C`.
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Per-value reconstruction weights: the number of kernel placements covering each
    /// pixel divided by the largest such number (1 in the interior, down to `1/k²` in a
    /// corner of an image at least `2k − 1` wide), repeated over the channels. A pixel near the border is reconstructed by
    /// fewer code units; weighting its error by its coverage keeps the decoder from bending
    /// its filters to fit the borders (Kavukcuoglu et al. 2010).
    pub fn coverage_weights(&self) -> Vec<f32> {
        let cover = |i: usize, outs: usize| -> usize {
            // placements o ∈ [0, outs) with o ≤ i < o + k
            let lo = (i + 1).saturating_sub(self.kernel);
            let hi = i.min(outs - 1);
            hi + 1 - lo
        };
        let cy: Vec<usize> = (0..self.height).map(|y| cover(y, self.out_h())).collect();
        let cx: Vec<usize> = (0..self.width).map(|x| cover(x, self.out_w())).collect();
        let max = (cy.iter().max().unwrap() * cx.iter().max().unwrap()) as f32;
        let mut w = Vec::with_capacity(self.image_len());
        for &a in &cy {
            for &b in &cx {
                let v = (a * b) as f32 / max;
                w.extend(std::iter::repeat(v).take(self.channels));
            }
        }
        w
    }

    /// Offset of each patch value from its placement's first pixel, in [`im2col`]'s
    /// patch order: `(a·k + b)·C + c` ↦ `(a·W + b)·C + c`.
    pub fn patch_offsets(&self) -> Vec<usize> {
        let (k, c, w) = (self.kernel, self.channels, self.width);
        let mut off = Vec::with_capacity(self.patch_len());
        for a in 0..k {
            for b in 0..k {
                off.extend((0..c).map(|ch| (a * w + b) * c + ch));
            }
        }
        off
    }

    /// The patch taps (indices into [`ConvShape::patch_offsets`]) in kernel-column-major
    /// order — column b, then row a, then channel. Consecutive taps then lie on different
    /// image rows, so adding several taps' values into an image one after the other never
    /// touches overlapping pixels (which stalls on store forwarding when the adds are
    /// unaligned vectors).
    pub fn column_major_taps(&self) -> Vec<usize> {
        let (k, c) = (self.kernel, self.channels);
        (0..k)
            .flat_map(|b| (0..k).flat_map(move |a| (0..c).map(move |ch| (a * k + b) * c + ch)))
            .collect()
    }

    /// Index of each placement's first pixel in a batch of `batch` images (one image per
    /// `image_len` values), in [`im2col`]'s row order: with [`ConvShape::patch_offsets`]
    /// the patch matrix read in place (see [`crate::kernels::GatherIndex`]).
    pub fn placement_bases(&self, batch: usize) -> Vec<usize> {
        let mut base = Vec::with_capacity(batch * self.positions());
        for img in 0..batch {
            for oy in 0..self.out_h() {
                for ox in 0..self.out_w() {
                    base.push(img * self.image_len() + (oy * self.width + ox) * self.channels);
                }
            }
        }
        base
    }

    #[track_caller]
    fn check(&self, images: usize, cols: usize) -> usize {
        assert!(
            images % self.image_len() == 0,
            "{images} image values are not a whole number of {}-value images",
            self.image_len()
        );
        let batch = images / self.image_len();
        assert_eq!(
            cols,
            batch * self.positions() * self.patch_len(),
            "patch buffer of {cols} values for {batch} images of {self:?}"
        );
        batch
    }
}

/// `cols ← im2col(images)`: `cols` is `(B·positions) × patch_len`, row-major.
///
/// The copy loops are compiled for every SIMD level and run at the dispatched one
/// ([`crate::simd::level`]): the kernel rows are short runs that the compiler vectorises
/// as wide as the level allows. Every level gives the same values (copies only).
///
/// # Panics
/// If the buffer lengths do not match the shape.
#[track_caller]
pub fn im2col(shape: &ConvShape, images: &[f32], cols: &mut [f32]) {
    let batch = shape.check(images.len(), cols.len());
    let job = Layout {
        shape,
        batch,
        op: LayoutOp::Gather { images, cols },
    };
    dispatch(Isa::current(), job)
}

/// `images ← images + col2im(cols)`: every patch row is added back at its placement (the
/// adjoint of [`im2col`]; with decoder patches it is the "full" convolution). Dispatched as
/// [`im2col`] is; every level adds in the same order and gives the same values.
///
/// # Panics
/// If the buffer lengths do not match the shape.
#[track_caller]
pub fn col2im_add(shape: &ConvShape, cols: &[f32], images: &mut [f32]) {
    let batch = shape.check(images.len(), cols.len());
    let job = Layout {
        shape,
        batch,
        op: LayoutOp::ScatterAdd { cols, images },
    };
    dispatch(Isa::current(), job)
}

/// One [`im2col`] or [`col2im_add`] call, run by [`dispatch`].
struct Layout<'a> {
    shape: &'a ConvShape,
    batch: usize,
    op: LayoutOp<'a>,
}

enum LayoutOp<'a> {
    Gather {
        images: &'a [f32],
        cols: &'a mut [f32],
    },
    ScatterAdd {
        cols: &'a [f32],
        images: &'a mut [f32],
    },
}

impl Kernel for Layout<'_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, _: S) {
        let shape = self.shape;
        let (k, c, w) = (shape.kernel, shape.channels, shape.width);
        let (kc, plen) = (k * c, shape.patch_len());
        match self.op {
            LayoutOp::Gather { images, cols } => {
                let mut rows = cols.chunks_exact_mut(plen);
                for img in images.chunks_exact(shape.image_len()).take(self.batch) {
                    for oy in 0..shape.out_h() {
                        for ox in 0..shape.out_w() {
                            let row = rows.next().unwrap();
                            for (a, dst) in row.chunks_exact_mut(kc).enumerate() {
                                let s = ((oy + a) * w + ox) * c;
                                // An element loop, not `copy_from_slice`: kernel rows are a
                                // few values long and a `memcpy` call per row cost 3× the
                                // copy itself.
                                for (d, v) in dst.iter_mut().zip(&img[s..s + kc]) {
                                    *d = *v;
                                }
                            }
                        }
                    }
                }
            }
            LayoutOp::ScatterAdd { cols, images } => {
                let mut rows = cols.chunks_exact(plen);
                for img in images.chunks_exact_mut(shape.image_len()).take(self.batch) {
                    for oy in 0..shape.out_h() {
                        for ox in 0..shape.out_w() {
                            let row = rows.next().unwrap();
                            for (a, src) in row.chunks_exact(kc).enumerate() {
                                let s = ((oy + a) * w + ox) * c;
                                for (d, v) in img[s..s + kc].iter_mut().zip(src) {
                                    *d += v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(shape: &ConvShape, img: &[f32], f: &[f32]) -> Vec<f32> {
        // valid correlation of one image with one filter (patch layout)
        let (k, c, w) = (shape.kernel, shape.channels, shape.width);
        let mut out = vec![0.0; shape.positions()];
        for oy in 0..shape.out_h() {
            for ox in 0..shape.out_w() {
                let mut s = 0.0;
                for a in 0..k {
                    for b in 0..k {
                        for ch in 0..c {
                            s += img[((oy + a) * w + ox + b) * c + ch] * f[(a * k + b) * c + ch];
                        }
                    }
                }
                out[oy * shape.out_w() + ox] = s;
            }
        }
        out
    }

    #[test]
    fn im2col_matches_direct_correlation_and_col2im_is_its_adjoint() {
        for isa in crate::simd::Isa::all() {
            isa.with(im2col_matches_direct_correlation_and_col2im_is_its_adjoint_here);
        }
    }

    fn im2col_matches_direct_correlation_and_col2im_is_its_adjoint_here() {
        let shape = ConvShape::new(5, 7, 2, 3).unwrap();
        let img: Vec<f32> = (0..2 * shape.image_len())
            .map(|i| ((i * 37 % 11) as f32) - 5.0)
            .collect();
        let f: Vec<f32> = (0..shape.patch_len())
            .map(|i| ((i * 13 % 7) as f32) * 0.5 - 1.0)
            .collect();
        let mut cols = vec![0.0; 2 * shape.positions() * shape.patch_len()];
        im2col(&shape, &img, &mut cols);
        for b in 0..2 {
            let want = direct(
                &shape,
                &img[b * shape.image_len()..][..shape.image_len()],
                &f,
            );
            for p in 0..shape.positions() {
                let row =
                    &cols[(b * shape.positions() + p) * shape.patch_len()..][..shape.patch_len()];
                let got: f32 = row.iter().zip(&f).map(|(a, b)| a * b).sum();
                assert_eq!(got, want[p]);
            }
        }
        // ⟨im2col(x), y⟩ = ⟨x, col2im(y)⟩
        let y: Vec<f32> = (0..cols.len())
            .map(|i| ((i * 7 % 5) as f32) - 2.0)
            .collect();
        let mut back = vec![0.0; img.len()];
        col2im_add(&shape, &y, &mut back);
        let lhs: f32 = cols.iter().zip(&y).map(|(a, b)| a * b).sum();
        let rhs: f32 = img.iter().zip(&back).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
    }

    #[test]
    fn every_level_gives_the_same_patches_and_sums() {
        for &(h, w, ch, k) in &[(28, 28, 1, 5), (12, 12, 16, 5), (7, 9, 3, 2), (5, 5, 1, 5)] {
            let shape = ConvShape::new(h, w, ch, k).unwrap();
            let batch = 3;
            let img: Vec<f32> = (0..batch * shape.image_len())
                .map(|i| ((i * 37) % 101) as f32 * 0.01 - 0.5)
                .collect();
            let run = |isa: crate::simd::Isa| {
                isa.with(|| {
                    let mut cols = vec![f32::NAN; batch * shape.positions() * shape.patch_len()];
                    im2col(&shape, &img, &mut cols);
                    let mut back = img.clone();
                    col2im_add(&shape, &cols, &mut back);
                    (cols, back)
                })
            };
            let all = crate::simd::Isa::all();
            let first = run(all[0]);
            for &isa in &all[1..] {
                let other = run(isa);
                assert!(
                    first.0 == other.0 && first.1 == other.1,
                    "{isa:?} {h}×{w}×{ch} k {k}"
                );
            }
        }
    }

    #[test]
    fn column_major_taps_permute_the_patch() {
        let shape = ConvShape::new(6, 6, 2, 3).unwrap();
        let taps = shape.column_major_taps();
        let mut sorted = taps.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..shape.patch_len()).collect::<Vec<_>>());
        // (a, b, ch) = (0,0,0), (0,0,1), (1,0,0): down the first kernel column
        assert_eq!(&taps[..3], &[0, 1, 6]);
    }

    #[test]
    fn coverage_weights_count_placements() {
        let shape = ConvShape::new(4, 5, 1, 3).unwrap();
        let ones = vec![1.0; shape.positions() * shape.patch_len()];
        let mut cover = vec![0.0; shape.image_len()];
        col2im_add(&shape, &ones, &mut cover);
        let max = cover.iter().cloned().fold(0.0, f32::max);
        let w = shape.coverage_weights();
        for (a, b) in w.iter().zip(&cover) {
            assert_eq!(*a, b / max);
        }
        assert_eq!(w[0], 1.0 / 6.0); // corner: 1 placement of at most 2 × 3
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(ConvShape::new(4, 4, 1, 5).is_err());
        assert!(ConvShape::new(0, 4, 1, 1).is_err());
    }
}
