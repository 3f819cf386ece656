"""The cross-modal layers as PyTorch 1.13 modules, written the way the
papers define them with nnlua's parameter names: the references of
gen_multimodal.py (values) and gen_protocol.py (names and counts)."""
import torch
import torch.nn as tnn
import torch.nn.functional as F


def zero_missing(xs, mask):
    return xs if mask is None else [x * mask[:, i:i + 1] for i, x in enumerate(xs)]


class ConcatFusion(tnn.Module):
    def __init__(self, dims, out):
        super().__init__()
        self.proj = tnn.Linear(sum(dims), out)

    def forward(self, xs, mask=None):
        return self.proj(torch.cat(zero_missing(xs, mask), 1))


class SumFusion(tnn.Module):
    def __init__(self, dims, out, shared=False):
        super().__init__()
        if shared:
            self.proj = tnn.Linear(dims[0], out)
        else:
            self.projs = tnn.ModuleList([tnn.Linear(d, out) for d in dims])
        self.shared = shared

    def forward(self, xs, mask=None):
        hs = [(self.proj if self.shared else self.projs[i])(x) for i, x in enumerate(xs)]
        return sum(zero_missing(hs, mask))


class GatedFusion(tnn.Module):
    """the gated multimodal unit (Arevalo et al. 2017), softmax gates over M"""
    def __init__(self, dims, out):
        super().__init__()
        self.projs = tnn.ModuleList([tnn.Linear(d, out) for d in dims])
        self.gate = tnn.Linear(sum(dims), out * len(dims))
        self.out = out

    def forward(self, xs, mask=None):
        xs = zero_missing(xs, mask)
        h = torch.stack([p(x) for p, x in zip(self.projs, xs)], 1).tanh()
        logits = self.gate(torch.cat(xs, 1)).view(xs[0].shape[0], len(xs), self.out)
        if mask is not None:
            logits = logits.masked_fill(mask[:, :, None] == 0, float("-inf"))
        return (logits.softmax(1) * h).sum(1)


class BilinearFusion(tnn.Module):
    """MFB (Yu et al. 2017): sum-pooled product, signed sqrt, L2 norm"""
    def __init__(self, d1, d2, out, factor):
        super().__init__()
        self.u, self.v = tnn.Linear(d1, out * factor), tnn.Linear(d2, out * factor)
        self.out, self.factor = out, factor

    def forward(self, xs, mask=None):
        xs = zero_missing(xs, mask)
        z = (self.u(xs[0]) * self.v(xs[1])).view(-1, self.out, self.factor).sum(2)
        z = torch.sign(z) * torch.sqrt(z.abs() + 1e-8)
        return z / (z.norm(dim=1, keepdim=True) + 1e-12)


class FiLM(tnn.Module):
    def __init__(self, cond_dim, channels, channel_dim):
        super().__init__()
        self.film = tnn.Linear(cond_dim, 2 * channels)
        self.c, self.cd = channels, channel_dim

    def forward(self, x, cond):
        gb = self.film(cond)
        shape = [1] * x.dim()
        shape[0], shape[self.cd] = x.shape[0], self.c
        return x * (1 + gb[:, :self.c].reshape(shape)) + gb[:, self.c:].reshape(shape)


class CrossModalAttention(tnn.Module):
    def __init__(self, dq, dc, heads):
        super().__init__()
        self.attn = tnn.MultiheadAttention(dq, heads, kdim=dc, vdim=dc, batch_first=True)
        self.norm = tnn.LayerNorm(dq)

    def forward(self, q, c, key_padding_mask=None):
        return self.norm(q + self.attn(q, c, c, key_padding_mask=key_padding_mask,
                                       need_weights=False)[0])


class PatchEmbedding(tnn.Module):
    def __init__(self, size, patch, channels, dim):
        super().__init__()
        n = (size // patch) ** 2
        self.proj = tnn.Conv2d(channels, dim, patch, stride=patch)
        self.cls_token = tnn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embedding = tnn.Parameter(torch.randn(1, n + 1, dim) * 0.02)

    def forward(self, x):
        p = self.proj(x).flatten(2).transpose(1, 2)
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), p], 1) + self.pos_embedding


class ViT(tnn.Module):
    def __init__(self, size, patch, channels, dim, depth, heads, mlp, classes):
        super().__init__()
        self.embed = PatchEmbedding(size, patch, channels, dim)
        self.blocks = tnn.ModuleList([
            tnn.TransformerEncoderLayer(dim, heads, mlp, 0.0, "gelu", batch_first=True,
                                        norm_first=True) for _ in range(depth)])
        self.norm = tnn.LayerNorm(dim)
        self.head = tnn.Linear(dim, classes)

    def forward(self, x):
        h = self.embed(x)
        for b in self.blocks:
            h = b(h)
        return self.head(self.norm(h)[:, 0])


class ContrastiveLoss(tnn.Module):
    def __init__(self, temperature):
        super().__init__()
        self.logit_scale = tnn.Parameter(torch.tensor([1 / temperature]).log())

    def forward(self, a, b):
        a = a / (a.norm(dim=1, keepdim=True) + 1e-12)
        b = b / (b.norm(dim=1, keepdim=True) + 1e-12)
        logits = a @ b.t() * self.logit_scale.exp().clamp(max=100)
        target = torch.arange(a.shape[0])
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
