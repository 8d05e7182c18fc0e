//! Training: optimisers, hyper-parameters, loops.
