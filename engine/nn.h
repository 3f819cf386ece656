/*
 * nn.h -- the nnlua engine in C11, with no Lua: the umbrella over its
 * headers, one per layer of the engine (each includes the one below it;
 * nn_dist.h needs only nn_tensor.h):
 *
 *   nn_tensor.h   core: tensors, views, creation, the autograd tape
 *   nn_ops.h      ops: elementwise, reductions, matmul, indexing, sorting
 *   nn_layers.h   nn: fused layers, attention, fusion, KG scores, optimizers
 *   nn_io.h       io: atomic files, safetensors, prefetching, BPE
 *   nn_dist.h     dist: collectives between processes over MPI
 *
 * A host that only needs tensors and autograd includes nn_tensor.h (and
 * nn_ops.h for maths); nn_tensor.h opens with a worked example.
 */
#ifndef NN_H
#define NN_H

#include "nn_io.h"
#include "nn_dist.h"

#endif
