#!/usr/bin/env python3
"""Write data/traces/demo_training.csv: the small allocation trace unimem ships for its tests and demo.

The trace is made up, in the shape of a few training steps of an 8-layer transformer in half precision (the
shape the recorded traces in ../shared/traces have), and is the same on every run:

- weights and biases are allocated once, before the first step; Adam's two state tensors per parameter are
  allocated at the first optimizer step and kept;
- each step's batch has its own sequence length (drawn from a seeded generator), so activation sizes change
  from step to step the way they do with variable-length batches;
- the forward pass allocates, per layer, the activations kept for the backward pass and a few temporaries it
  frees at once; the backward pass frees the kept activations in reverse order and allocates the gradients,
  which zero_grad(set_to_none=True) frees after the optimizer step;
- a few large buffers come and go: the logits and their gradient, and an attention workspace per layer.

Addresses come from a toy caching allocator (a freed block's address is handed out again for the next block
of the same rounded size), so the trace looks like what PyTorch records. Usage:

    python3 tools/make_demo_trace.py [-o data/traces/demo_training.csv]
"""

import argparse
import os
import random
import sys

HEADER = "Thread,Time,Action,Pointer,Size,Stream"
SEED = 4
LAYERS = 8
HIDDEN = 1024
HEADS = 16
BATCH = 8
VOCAB = 32000
STEPS = 4
ELEMENT = 2  # bytes: half precision
ROUNDING = 512  # PyTorch rounds blocks to 512 bytes
FIRST_ADDRESS = 0x7F0000000000
MICROSECONDS_PER_EVENT = 7


class TraceWriter:
    """Hands out addresses like a caching allocator and records each allocate and free."""

    def __init__(self):
        self.lines = [HEADER]
        self.next_address = FIRST_ADDRESS
        self.cached = {}  # rounded size -> freed addresses, reused last-in first-out
        self.sizes = {}  # live address -> size

    def _record(self, action, address, size):
        micros = (len(self.lines) - 1) * MICROSECONDS_PER_EVENT
        seconds, micros = divmod(micros, 1_000_000)
        minutes, seconds = divmod(seconds, 60)
        self.lines.append(f"0,00:{minutes:02d}:{seconds:02d}.{micros:06d},{action},{address:#x},{size},0x0")

    def allocate(self, size):
        rounded = -(-size // ROUNDING) * ROUNDING
        free_list = self.cached.get(rounded)
        if free_list:
            address = free_list.pop()
        else:
            address = self.next_address
            self.next_address += rounded
        self.sizes[address] = size
        self._record("allocate", address, size)
        return address

    def free(self, address):
        size = self.sizes.pop(address)
        self.cached.setdefault(-(-size // ROUNDING) * ROUNDING, []).append(address)
        self._record("free", address, size)

    def free_all(self, addresses):
        for address in addresses:
            self.free(address)


def tensor(*shape):
    size = ELEMENT
    for extent in shape:
        size *= extent
    return size


def layer_parameter_shapes():
    return [(HIDDEN,), (HIDDEN,),  # first layer norm
            (3 * HIDDEN, HIDDEN), (3 * HIDDEN,),  # q, k, v projection
            (HIDDEN, HIDDEN), (HIDDEN,),  # output projection
            (HIDDEN,), (HIDDEN,),  # second layer norm
            (4 * HIDDEN, HIDDEN), (4 * HIDDEN,),  # feed-forward up
            (HIDDEN, 4 * HIDDEN), (HIDDEN,)]  # feed-forward down


def parameter_shapes():
    """Token embedding, the layers, the final layer norm."""
    return [(VOCAB, HIDDEN)] + layer_parameter_shapes() * LAYERS + [(HIDDEN,), (HIDDEN,)]


def forward_layer(trace, tokens, sequence):
    """Allocates one layer's forward pass; returns the activations kept for the backward pass."""
    kept = [trace.allocate(tensor(tokens, HIDDEN))]  # layer norm output
    kept.append(trace.allocate(tensor(tokens, 3 * HIDDEN)))  # q, k, v
    scores = trace.allocate(tensor(BATCH, HEADS, sequence, sequence))
    kept.append(trace.allocate(tensor(BATCH, HEADS, sequence, sequence)))  # softmax
    trace.free(scores)
    kept.append(trace.allocate(tensor(tokens, HIDDEN)))  # attention output
    kept.append(trace.allocate(tensor(tokens, HIDDEN)))  # residual
    kept.append(trace.allocate(tensor(tokens, HIDDEN)))  # second layer norm output
    kept.append(trace.allocate(tensor(tokens, 4 * HIDDEN)))  # feed-forward hidden
    kept.append(trace.allocate(tensor(tokens, 4 * HIDDEN)))  # GELU output
    temporary = trace.allocate(tensor(tokens, HIDDEN))
    kept.append(trace.allocate(tensor(tokens, HIDDEN)))  # layer output
    trace.free(temporary)
    return kept


def backward_layer(trace, kept, gradient, sequence, layer_shapes):
    """Frees one layer's kept activations in reverse order, handing the gradient down; returns the gradient for
    the layer below and the gradients of this layer's parameters."""
    workspace = trace.allocate(tensor(BATCH, HEADS, sequence, sequence))  # attention backward workspace
    for activation in reversed(kept):
        next_gradient = trace.allocate(trace.sizes[activation])
        trace.free(activation)
        trace.free(gradient)
        gradient = next_gradient
    trace.free(workspace)
    return gradient, [trace.allocate(tensor(*shape)) for shape in layer_shapes]


def training_trace():
    rng = random.Random(SEED)
    trace = TraceWriter()
    shapes = parameter_shapes()
    for shape in shapes:  # weights live for the whole run
        trace.allocate(tensor(*shape))
    optimizer_ready = False
    for _ in range(STEPS):
        sequence = rng.choice((384, 448, 512))
        tokens = BATCH * sequence
        batch = trace.allocate(BATCH * sequence * 8)  # token ids, int64
        hidden = trace.allocate(tensor(tokens, HIDDEN))  # embedding output
        kept = [forward_layer(trace, tokens, sequence) for _ in range(LAYERS)]
        logits = trace.allocate(tensor(tokens, VOCAB))
        loss = trace.allocate(ROUNDING)
        logits_gradient = trace.allocate(tensor(tokens, VOCAB))
        trace.free(logits)
        gradients = [trace.allocate(tensor(*shapes[-1])), trace.allocate(tensor(*shapes[-2]))]
        gradient = trace.allocate(tensor(tokens, HIDDEN))
        trace.free(logits_gradient)
        for layer in reversed(range(LAYERS)):
            gradient, layer_gradients = backward_layer(trace, kept[layer], gradient, sequence,
                                                    layer_parameter_shapes())
            gradients += layer_gradients
        gradients.append(trace.allocate(tensor(*shapes[0])))  # embedding gradient
        trace.free(gradient)
        trace.free_all((loss, hidden, batch))
        if not optimizer_ready:  # Adam's two state tensors per parameter, kept from the first step on
            for shape in shapes:
                trace.allocate(tensor(*shape))
                trace.allocate(tensor(*shape))
            optimizer_ready = True
        step_scratch = [trace.allocate(tensor(*shape)) for shape in shapes[:3]]  # foreach temporaries
        trace.free_all(reversed(step_scratch))
        trace.free_all(gradients)  # zero_grad(set_to_none=True)
    return trace.lines


def main(argv=None):
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "traces", "demo_training.csv")
    parser = argparse.ArgumentParser(description="Write unimem's demo allocation trace.")
    parser.add_argument("-o", "--output", default=os.path.normpath(default), help="where to write the CSV")
    args = parser.parse_args(argv)
    lines = training_trace()
    with open(args.output, "w", encoding="ascii", newline="\n") as out:
        out.write("\n".join(lines) + "\n")
    print(f"{args.output}: {len(lines) - 1} events", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
