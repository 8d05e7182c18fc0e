//! Sources of activation vectors for sparse auto-encoders: a matrix in memory, or `.npy` /
//! `.safetensors` shards on disk streamed in shuffled chunks with bounded memory.
//!
//! A source hands out batches forever, one shuffled pass after another; the trainer decides
//! how many samples to take.

use crate::io::ShardReader;
use crate::linalg::{Mat, MatRef};
use crate::rng::SeedRng;
use crate::{Error, Result};
use rand::seq::SliceRandom;
use std::path::PathBuf;

/// Where a trainer takes its activation vectors from.
pub trait ActivationSource {
    /// Width of every vector.
    fn d_in(&self) -> usize;
    /// Number of vectors in one pass, if known.
    fn len(&self) -> Option<u64>;
    /// True when the source holds no vectors.
    fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
    /// Fills every row of `out` (`rows × d_in`) with the next vectors, starting a new
    /// shuffled pass whenever one ends.
    ///
    /// # Errors
    /// Reading a shard failed, or the source is empty.
    fn fill(&mut self, out: &mut Mat) -> Result<()>;
    /// Moves past the next `rows` vectors as if `fill` had served them (a resumed run
    /// continues where the interrupted one stopped). The default fills and discards them;
    /// sources that can skip without reading override it.
    ///
    /// # Errors
    /// As [`fill`](Self::fill).
    fn skip(&mut self, rows: u64) -> Result<()> {
        let mut left = rows;
        let mut scratch = Mat::zeros(0, self.d_in());
        while left > 0 {
            let n = left.min(4096) as usize;
            if scratch.nrows() != n {
                scratch = Mat::zeros(n, self.d_in());
            }
            self.fill(&mut scratch)?;
            left -= n as u64;
        }
        Ok(())
    }
}

/// Vectors held in memory (rows of a matrix), served in a new random order each pass.
#[derive(Clone)]
pub struct InMemory<'a> {
    data: MatRef<'a>,
    order: Vec<u32>,
    at: usize,
    rng: SeedRng,
}

impl<'a> InMemory<'a> {
    /// A source over the rows of `data`, shuffled with `seed`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when `data` has no rows or no columns, or more rows than
    /// `u32` indexes.
    pub fn new(data: MatRef<'a>, seed: u64) -> Result<InMemory<'a>> {
        if data.nrows() == 0 || data.ncols() == 0 {
            return Err(Error::param("data", "no activation vectors"));
        }
        if data.nrows() > u32::MAX as usize {
            return Err(Error::param("data", "more than 2³² rows in memory"));
        }
        Ok(InMemory {
            data,
            order: Vec::new(),
            at: 0,
            rng: crate::rng::seeded(seed),
        })
    }
}

impl ActivationSource for InMemory<'_> {
    fn d_in(&self) -> usize {
        self.data.ncols()
    }
    fn len(&self) -> Option<u64> {
        Some(self.data.nrows() as u64)
    }
    fn fill(&mut self, out: &mut Mat) -> Result<()> {
        assert_eq!(out.ncols(), self.d_in(), "batch width");
        for i in 0..out.nrows() {
            if self.at == self.order.len() {
                self.order = (0..self.data.nrows() as u32).collect();
                self.order.shuffle(&mut self.rng);
                self.at = 0;
            }
            let r = self.order[self.at] as usize;
            self.at += 1;
            let row = out.row_mut(i);
            for (j, v) in row.iter_mut().enumerate() {
                *v = self.data.get(r, j);
            }
        }
        Ok(())
    }
    fn skip(&mut self, rows: u64) -> Result<()> {
        let mut left = rows;
        while left > 0 {
            if self.at == self.order.len() {
                self.order = (0..self.data.nrows() as u32).collect();
                self.order.shuffle(&mut self.rng);
                self.at = 0;
            }
            let take = left.min((self.order.len() - self.at) as u64);
            self.at += take as usize;
            left -= take;
        }
        Ok(())
    }
}

/// Activation shards on disk (`.npy` float32 2-D arrays, or `.safetensors` files with one
/// 2-D F32 tensor), read in chunks of `chunk_rows` rows: each pass visits every chunk of
/// every shard once, in a random order, and serves rows from a buffer of `buffer_chunks`
/// chunks, shuffled together. Memory: `buffer_chunks · chunk_rows · d_in` floats, whatever
/// the shards' size.
#[derive(Debug)]
pub struct Shards {
    readers: Vec<ShardReader>,
    d_in: usize,
    chunk_rows: usize,
    buffer_chunks: usize,
    /// (shard, first row) of each chunk.
    chunks: Vec<(u32, u64)>,
    next_chunk: usize,
    /// Chunks (shard, first row, rows) planned for the buffer and not read yet.
    pending: Vec<(u32, u64, usize)>,
    buffer: Vec<f32>,
    order: Vec<u32>,
    at: usize,
    rng: SeedRng,
}

impl Shards {
    /// Opens every shard (checking headers, shapes and sizes against the files) without
    /// reading their data.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::Format`] for a shard that cannot be read or is malformed,
    /// [`Error::InvalidParameter`] for no shards, shards of different widths, or zero
    /// `chunk_rows` / `buffer_chunks`.
    pub fn open(
        paths: &[PathBuf],
        chunk_rows: usize,
        buffer_chunks: usize,
        seed: u64,
    ) -> Result<Shards> {
        if paths.is_empty() {
            return Err(Error::param("shards", "no activation files"));
        }
        if chunk_rows == 0 || buffer_chunks == 0 {
            return Err(Error::param(
                "chunk_rows",
                "chunk_rows and buffer_chunks must be at least 1",
            ));
        }
        let mut readers = Vec::with_capacity(paths.len());
        for p in paths {
            readers.push(ShardReader::open(p)?);
        }
        let d_in = readers[0].ncols();
        if let Some(r) = readers.iter().find(|r| r.ncols() != d_in) {
            return Err(Error::param(
                "shards",
                format!(
                    "{} has rows of {} values, {} has {d_in}",
                    r.path().display(),
                    r.ncols(),
                    readers[0].path().display()
                ),
            ));
        }
        let mut chunks = Vec::new();
        for (s, r) in readers.iter().enumerate() {
            let mut at = 0;
            while at < r.nrows() {
                chunks.push((s as u32, at));
                at += chunk_rows as u64;
            }
        }
        if chunks.is_empty() {
            return Err(Error::param("shards", "every shard is empty"));
        }
        Ok(Shards {
            readers,
            d_in,
            chunk_rows,
            buffer_chunks,
            chunks,
            next_chunk: usize::MAX,
            pending: Vec::new(),
            buffer: Vec::new(),
            order: Vec::new(),
            at: 0,
            rng: crate::rng::seeded(seed),
        })
    }

    /// Chooses the next `buffer_chunks` chunks (a new pass when the chunks run out) and
    /// shuffles the order of their rows, without reading them: `pending` lists them for
    /// [`load`](Self::load).
    fn plan(&mut self) {
        self.pending.clear();
        let mut n = 0usize;
        for _ in 0..self.buffer_chunks {
            if self.next_chunk >= self.chunks.len() {
                self.chunks.shuffle(&mut self.rng);
                self.next_chunk = 0;
                if !self.pending.is_empty() {
                    break; // a pass ends at a buffer boundary
                }
            }
            let (s, first) = self.chunks[self.next_chunk];
            self.next_chunk += 1;
            let rows = (self.readers[s as usize].nrows() - first).min(self.chunk_rows as u64);
            self.pending.push((s, first, rows as usize));
            n += rows as usize;
        }
        self.order = (0..n as u32).collect();
        self.order.shuffle(&mut self.rng);
        self.at = 0;
    }

    /// Reads the planned chunks into the buffer.
    fn load(&mut self) -> Result<()> {
        self.buffer.clear();
        for &(s, first, rows) in &self.pending {
            self.readers[s as usize].read_rows(first, rows, &mut self.buffer)?;
        }
        self.pending.clear();
        Ok(())
    }
}

impl ActivationSource for Shards {
    fn d_in(&self) -> usize {
        self.d_in
    }
    fn len(&self) -> Option<u64> {
        Some(self.readers.iter().map(|r| r.nrows()).sum())
    }
    fn fill(&mut self, out: &mut Mat) -> Result<()> {
        assert_eq!(out.ncols(), self.d_in, "batch width");
        let d = self.d_in;
        for i in 0..out.nrows() {
            if self.at >= self.order.len() {
                self.plan();
            }
            if !self.pending.is_empty() {
                self.load()?;
            }
            let r = self.order[self.at] as usize;
            self.at += 1;
            out.row_mut(i)
                .copy_from_slice(&self.buffer[r * d..(r + 1) * d]);
        }
        Ok(())
    }
    /// Skips whole buffers without reading them.
    fn skip(&mut self, rows: u64) -> Result<()> {
        let mut left = rows;
        while left > 0 {
            if self.at >= self.order.len() {
                self.plan();
            }
            let take = left.min((self.order.len() - self.at) as u64);
            self.at += take as usize;
            left -= take;
        }
        if self.at < self.order.len() && !self.pending.is_empty() {
            self.load()?;
        }
        Ok(())
    }
}

/// A random sample of up to `n` rows of a source (for estimating scales and medians before
/// training): the first `n` vectors it serves.
pub(crate) fn sample(source: &mut dyn ActivationSource, n: usize) -> Result<Mat> {
    let n = match source.len() {
        Some(len) => n.min(len as usize).max(1),
        None => n.max(1),
    };
    let mut m = Mat::zeros(n, source.d_in());
    source.fill(&mut m)?;
    Ok(m)
}
