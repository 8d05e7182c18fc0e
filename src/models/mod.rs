//! Models: DrSAE and LISTA.
