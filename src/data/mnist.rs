//! MNIST from a directory of IDX files (the four standard names, gzip or raw).

use super::idx::{read_idx_images, read_idx_labels, IdxImages};
use crate::linalg::Mat;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// A labelled image set: one image per row, pixels / 255.
#[derive(Clone, Debug)]
pub struct LabelledImages {
    /// `count × (rows·cols)` pixels in [0, 1].
    pub images: Mat,
    /// One label per row.
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl LabelledImages {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Splits off the last `n` examples: `(first, last_n)`.
    pub fn split_last(self, n: usize) -> (LabelledImages, LabelledImages) {
        let n = n.min(self.len());
        let k = self.len() - n;
        let first = LabelledImages {
            images: self.images.row_range(0, k).to_owned(),
            labels: self.labels[..k].to_vec(),
            rows: self.rows,
            cols: self.cols,
        };
        let last = LabelledImages {
            images: self.images.row_range(k, self.len()).to_owned(),
            labels: self.labels[k..].to_vec(),
            rows: self.rows,
            cols: self.cols,
        };
        (first, last)
    }
    /// The first `n` examples.
    pub fn take(self, n: usize) -> LabelledImages {
        if n >= self.len() {
            return self;
        }
        LabelledImages {
            images: self.images.row_range(0, n).to_owned(),
            labels: self.labels[..n].to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// `count` random `size × size` patches (one per row) of the images, drawn as
    /// [`sample_patches`](crate::data::sample_patches) does from a generator seeded by
    /// `seed`.
    ///
    /// # Errors
    /// As [`sample_patches`](crate::data::sample_patches): no images, or images smaller
    /// than the patch.
    pub fn patches(&self, size: usize, count: usize, seed: u64) -> Result<Mat> {
        let images: Vec<crate::data::GrayImage> = self
            .images
            .rows()
            .map(|r| crate::data::GrayImage {
                width: self.cols,
                height: self.rows,
                pixels: r.to_vec(),
            })
            .collect();
        let mut rng = crate::rng::seeded(seed);
        crate::data::sample_patches(&images, size, count, &mut rng)
    }
}

/// MNIST's training and test sets.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// The training images (60,000 in full MNIST).
    pub train: LabelledImages,
    /// The test images (10,000).
    pub test: LabelledImages,
}

/// The first of `stem.gz` and `stem` that exists (whatever it is: a directory or a FIFO
/// under the name is reported by the reader as not a regular file, rather than skipped).
fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(name);
        // `symlink_metadata`: a dangling symlink exists too (and fails to open, loudly).
        if std::fs::symlink_metadata(&p).is_ok() {
            return Ok(p);
        }
    }
    Err(Error::io(
        dir.join(format!("{stem}[.gz]")),
        std::io::Error::new(std::io::ErrorKind::NotFound, "MNIST file not found"),
    ))
}

fn load_set(dir: &Path, images: &str, labels: &str) -> Result<LabelledImages> {
    let (images_path, labels_path) = (find(dir, images)?, find(dir, labels)?);
    let (images, labels) = (images_path.display(), labels_path.display());
    let img: IdxImages = read_idx_images(&images_path)?;
    if img.count == 0 || img.rows == 0 || img.cols == 0 {
        return Err(Error::format(
            "IDX",
            format!(
                "{images}: {} images of {}×{} pixels (need at least one image of at least one pixel)",
                img.count, img.rows, img.cols
            ),
        ));
    }
    let lab = read_idx_labels(&labels_path)?;
    if lab.len() != img.count {
        return Err(Error::format(
            "IDX",
            format!(
                "{images}: {} images but {labels}: {} labels",
                img.count,
                lab.len()
            ),
        ));
    }
    if let Some(i) = lab.iter().position(|&l| l > 9) {
        return Err(Error::format(
            "IDX",
            format!("{labels}: label {} at index {i} is not a digit", lab[i]),
        ));
    }
    let pixels = img.pixels.iter().map(|&p| p as f32 / 255.0).collect();
    Ok(LabelledImages {
        images: Mat::from_vec(img.count, img.rows * img.cols, pixels),
        labels: lab,
        rows: img.rows,
        cols: img.cols,
    })
}

impl Mnist {
    /// Loads `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`
    /// and `t10k-labels-idx1-ubyte` (each optionally `.gz`) from `dir`.
    ///
    /// When both `NAME.gz` and `NAME` exist, `NAME.gz` is read.
    ///
    /// # Errors
    /// A missing file, or one that is not a regular file ([`Error::Io`]); a malformed file,
    /// image and label counts that disagree, a label above 9, an empty training or test set,
    /// or training and test images of different sizes ([`Error::Format`]).
    pub fn load(dir: impl AsRef<Path>) -> Result<Mnist> {
        let dir = dir.as_ref();
        let train = load_set(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")?;
        let test = load_set(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?;
        if (train.rows, train.cols) != (test.rows, test.cols) {
            return Err(Error::format(
                "IDX",
                format!(
                    "{}: training images are {}×{}, test images {}×{}",
                    dir.display(),
                    train.rows,
                    train.cols,
                    test.rows,
                    test.cols
                ),
            ));
        }
        Ok(Mnist { train, test })
    }
}
