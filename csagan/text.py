"""Text encoder: the bidirectional LSTM of AttnGAN's DAMSM (paper Section 3.1, Eqs. 13-15).

Two implementations of the same recurrence live here:

* :class:`RNNEncoder` is the encoder the GAN and DAMSM use. It wraps ``torch.nn.LSTM`` over
  packed sequences and has the submodule names of AttnGAN's released text encoders
  (``encoder``, ``drop``, ``rnn``), so ``text_encoder200.pth`` (CUB) and
  ``text_encoder100.pth`` (COCO) load with ``load_state_dict(strict=True)``.
* :class:`HandLSTM` / :class:`HandBiLSTM` follow Eqs. (13)-(15) gate by gate in plain tensor
  operations. They are slow and exist for the book and for tests: ``from_torch`` copies a
  ``torch.nn.LSTM``'s weights into them and the outputs agree to float precision.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = [
    "HandBiLSTM",
    "HandLSTM",
    "RNNEncoder",
    "check_captions",
    "freeze",
    "load_attngan_text_encoder",
]

LSTMState = tuple[Tensor, Tensor]


def freeze(module: nn.Module) -> nn.Module:
    """Switch ``module`` to eval mode and stop gradients to all its parameters; returns it.

    DF-GAN, SSA-GAN and CSA-GAN keep the pretrained DAMSM encoders frozen while the GAN trains.
    Gradients still flow *through* a frozen module to its inputs.
    """
    for param in module.parameters():
        param.requires_grad_(False)
    module.eval()
    return module


def check_captions(captions: Tensor, cap_lens: Tensor, n_words: int | None = None) -> None:
    """Raise ``ValueError`` unless ``captions`` [B, T] and ``cap_lens`` [B] form a valid batch.

    Captions are word indices padded with 0 (AttnGAN's ``<end>`` token); every length must be
    in ``1..T``. With ``n_words`` the indices must also be ``< n_words``.
    """
    if captions.dim() != 2:
        raise ValueError(
            f"captions must be a LongTensor of shape [B, T] (word indices padded with 0), "
            f"got shape {tuple(captions.shape)}; add a batch dimension with captions[None]."
        )
    if captions.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"captions must hold integer word indices (torch.long), got dtype {captions.dtype}; "
            "convert with captions.long()."
        )
    if cap_lens.dim() != 1 or cap_lens.shape[0] != captions.shape[0]:
        raise ValueError(
            f"cap_lens must have shape [B] = [{captions.shape[0]}] to match captions "
            f"{tuple(captions.shape)}, got {tuple(cap_lens.shape)}."
        )
    if captions.shape[0] == 0 or captions.shape[1] == 0:
        raise ValueError(f"captions is empty (shape {tuple(captions.shape)}); pass at least one word.")
    t_max = captions.shape[1]
    if bool((cap_lens < 1).any()) or bool((cap_lens > t_max).any()):
        raise ValueError(
            f"cap_lens must lie in 1..{t_max} (the caption tensor's length), got "
            f"min {int(cap_lens.min())}, max {int(cap_lens.max())}; empty captions cannot be encoded."
        )
    if n_words is not None and captions.numel() > 0:
        lo, hi = int(captions.min()), int(captions.max())
        if lo < 0 or hi >= n_words:
            raise ValueError(
                f"caption word indices must lie in 0..{n_words - 1} (the encoder's vocabulary), "
                f"got {lo}..{hi}; the captions pickle and the text encoder use different vocabularies."
            )


class RNNEncoder(nn.Module):
    """AttnGAN's BiLSTM text encoder (Eqs. 13-15).

    Embedding (300-d, uniform ±0.1) → dropout → one-layer bidirectional LSTM with
    ``hidden // 2`` units per direction. Word features are the per-step outputs
    (forward ⊕ backward, Eq. 13), the sentence code is the last hidden state of each
    direction concatenated.

    Args:
        n_words: vocabulary size (index 0 is the padding / ``<end>`` token).
        emb_dim: word-embedding size (300 in AttnGAN).
        hidden: total feature size D; each direction has ``hidden // num_directions`` units.
        dropout: dropout on the embeddings (0.5; active in train mode only).
        words_num: nominal caption length (18); informational, the forward pass pads word
            features to the length of the caption tensor it is given.
        bidirectional: two directions (Eq. 13) or one.
    """

    def __init__(
        self,
        n_words: int,
        emb_dim: int = 300,
        hidden: int = 256,
        dropout: float = 0.5,
        words_num: int = 18,
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        if n_words < 1:
            raise ValueError(f"n_words must be >= 1 (the vocabulary size), got {n_words}.")
        num_dir = 2 if bidirectional else 1
        if hidden < num_dir or hidden % num_dir != 0:
            raise ValueError(
                f"hidden={hidden} is the total feature size and must be divisible by the number of "
                f"directions ({num_dir}); use an even number such as 256."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        self.n_words = n_words
        self.emb_dim = emb_dim
        self.hidden = hidden
        self.words_num = words_num
        self.num_directions = num_dir
        self.hidden_per_direction = hidden // num_dir
        self.encoder = nn.Embedding(n_words, emb_dim)
        self.drop = nn.Dropout(dropout)
        self.rnn = nn.LSTM(
            emb_dim, self.hidden_per_direction, 1, batch_first=True, bidirectional=bidirectional
        )
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)

    def init_hidden(self, batch_size: int) -> LSTMState:
        """Zero initial state ``(h0, c0)``, each [num_directions, B, hidden // num_directions]."""
        weight = self.encoder.weight
        shape = (self.num_directions, batch_size, self.hidden_per_direction)
        zeros = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
        return zeros, zeros.clone()

    def forward(
        self, captions: Tensor, cap_lens: Tensor, hidden: LSTMState | None = None
    ) -> tuple[Tensor, Tensor]:
        """Encode a batch of padded captions.

        Args:
            captions: LongTensor [B, T] of word indices padded with 0.
            cap_lens: LongTensor [B] of caption lengths in ``1..T`` (any order; no sorting needed).
            hidden: optional initial ``(h0, c0)`` in the batch's order; zeros when ``None``.

        Returns:
            ``(words_emb [B, hidden, T], sent_emb [B, hidden])``. Word features at padded
            positions are 0; a caption's codes do not depend on how much padding follows it.
        """
        check_captions(captions, cap_lens, self.n_words)
        batch, t_max = captions.shape
        emb = self.drop(self.encoder(captions.long()))
        packed = pack_padded_sequence(
            emb, cap_lens.detach().to("cpu", torch.int64), batch_first=True, enforce_sorted=False
        )
        out_packed, (h_n, _) = self.rnn(packed, hidden)
        out, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=t_max)
        words_emb = out.transpose(1, 2).contiguous()
        # h_n: [num_directions, B, H] back in the caller's order → [B, num_directions * H] (Eq. 13).
        sent_emb = h_n.transpose(0, 1).reshape(batch, self.hidden)
        return words_emb, sent_emb


_TEXT_ENCODER_HELP = (
    "Use AttnGAN's pretrained DAMSM text encoder `text_encoder200.pth` for CUB birds or "
    "`text_encoder100.pth` for COCO (released with AttnGAN and DF-GAN as DAMSMencoders), or train "
    "one with `csagan pretrain-damsm`."
)


def load_attngan_text_encoder(path: str | Path, n_words: int | None = None) -> RNNEncoder:
    """Load an AttnGAN-format text-encoder state dict into a new :class:`RNNEncoder`.

    The vocabulary size, embedding size, hidden size and number of directions are read from the
    tensors (``encoder.weight`` is [n_words, emb_dim], ``rnn.weight_hh_l0`` is [4H, H]). With
    ``n_words`` (the size of the dataset's ``ixtoword`` from its captions pickle) a mismatch
    raises ``ValueError``. The returned encoder is in eval mode (dropout off) on the CPU.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not such a state dict, or the vocabulary sizes differ.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Text encoder weights not found: {path}. {_TEXT_ENCODER_HELP}")
    state = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(state, dict) or "encoder.weight" not in state or "rnn.weight_hh_l0" not in state:
        keys = list(state)[:5] if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"{path} is not an AttnGAN text-encoder state dict (expected keys 'encoder.weight' and "
            f"'rnn.weight_hh_l0', found {keys}). {_TEXT_ENCODER_HELP}"
        )
    file_words, emb_dim = state["encoder.weight"].shape
    per_dir = state["rnn.weight_hh_l0"].shape[1]
    bidirectional = "rnn.weight_hh_l0_reverse" in state
    if n_words is not None and n_words != file_words:
        raise ValueError(
            f"Vocabulary size mismatch: {path} was trained with {file_words} words but the dataset's "
            f"captions pickle has {n_words}. Use the captions pickle that came with these weights "
            "(DF-GAN's captions_DAMSM.pickle / AttnGAN's captions.pickle) or retrain the encoder "
            "with `csagan pretrain-damsm`."
        )
    model = RNNEncoder(
        int(file_words),
        emb_dim=int(emb_dim),
        hidden=int(per_dir) * (2 if bidirectional else 1),
        bidirectional=bidirectional,
    )
    model.load_state_dict(state, strict=True)
    return model.eval()


class HandLSTM(nn.Module):
    """One LSTM direction written out as in Eqs. (14)-(15), gate by gate.

    With input ``t_j`` and previous state ``(h_{j-1}, C_{j-1})``::

        i_j = σ(W_i t_j + U_i h_{j-1} + b_i)        f_j = σ(W_f t_j + U_f h_{j-1} + b_f)
        o_j = σ(W_o t_j + U_o h_{j-1} + b_o)        C̃_j = tanh(W_c t_j + U_c h_{j-1} + b_c)
        C_j = f_j ⊙ C_{j-1} + i_j ⊙ C̃_j             h_j = o_j ⊙ tanh(C_j)

    ``reverse=True`` runs the recurrence from the last valid word to the first (the backward
    half of Eq. 13). Variable lengths are handled by masking: past a caption's end the state is
    left unchanged and the output is 0, which is what packed sequences compute.
    """

    def __init__(self, input_size: int, hidden_size: int, reverse: bool = False) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"input_size and hidden_size must be >= 1, got {input_size} and {hidden_size}."
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.reverse = reverse
        bound = 1.0 / math.sqrt(hidden_size)

        def param(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))

        self.W_i, self.W_f, self.W_o, self.W_c = (param(hidden_size, input_size) for _ in range(4))
        self.U_i, self.U_f, self.U_o, self.U_c = (param(hidden_size, hidden_size) for _ in range(4))
        self.b_i, self.b_f, self.b_o, self.b_c = (param(hidden_size) for _ in range(4))

    @classmethod
    def from_torch(cls, lstm: nn.LSTM, direction: int = 0) -> HandLSTM:
        """Copy one direction of a one-layer ``torch.nn.LSTM`` into a new :class:`HandLSTM`.

        torch stacks the four gates' weights as rows ``[i, f, g, o]`` (g is C̃) in
        ``weight_ih_l0`` (the W's) and ``weight_hh_l0`` (the U's) and has two biases,
        ``bias_ih_l0`` and ``bias_hh_l0``; Eq. (14) has one bias per gate, their sum.
        ``direction=1`` takes the ``_reverse`` weights and returns a reverse-running LSTM.
        """
        if lstm.num_layers != 1 or lstm.proj_size != 0:
            raise ValueError(
                f"from_torch supports one-layer LSTMs without projection, got num_layers="
                f"{lstm.num_layers}, proj_size={lstm.proj_size}."
            )
        if direction not in (0, 1) or (direction == 1 and not lstm.bidirectional):
            raise ValueError(
                f"direction must be 0 (forward) or 1 (backward, bidirectional LSTMs only), got "
                f"{direction} for bidirectional={lstm.bidirectional}."
            )
        if not lstm.batch_first:
            raise ValueError("from_torch expects a batch_first=True LSTM, as RNNEncoder uses.")
        suffix = "_reverse" if direction == 1 else ""
        w_ih = getattr(lstm, f"weight_ih_l0{suffix}").detach()
        w_hh = getattr(lstm, f"weight_hh_l0{suffix}").detach()
        if lstm.bias:
            bias = (
                getattr(lstm, f"bias_ih_l0{suffix}").detach()
                + getattr(lstm, f"bias_hh_l0{suffix}").detach()
            )
        else:
            bias = torch.zeros(w_ih.shape[0], dtype=w_ih.dtype, device=w_ih.device)
        hand = cls(lstm.input_size, lstm.hidden_size, reverse=direction == 1)
        hand = hand.to(device=w_ih.device, dtype=w_ih.dtype)
        gates_w = w_ih.chunk(4, dim=0)
        gates_u = w_hh.chunk(4, dim=0)
        gates_b = bias.chunk(4, dim=0)
        with torch.no_grad():
            for k, name in enumerate(("i", "f", "c", "o")):  # torch's order i, f, g(=C̃), o
                getattr(hand, f"W_{name}").copy_(gates_w[k])
                getattr(hand, f"U_{name}").copy_(gates_u[k])
                getattr(hand, f"b_{name}").copy_(gates_b[k])
        return hand

    def step(self, t_j: Tensor, h_prev: Tensor, c_prev: Tensor) -> LSTMState:
        """One time step, Eqs. (14)-(15): returns ``(h_j, C_j)``."""
        i_j = torch.sigmoid(t_j @ self.W_i.T + h_prev @ self.U_i.T + self.b_i)
        f_j = torch.sigmoid(t_j @ self.W_f.T + h_prev @ self.U_f.T + self.b_f)
        o_j = torch.sigmoid(t_j @ self.W_o.T + h_prev @ self.U_o.T + self.b_o)
        c_tilde = torch.tanh(t_j @ self.W_c.T + h_prev @ self.U_c.T + self.b_c)
        c_j = f_j * c_prev + i_j * c_tilde
        h_j = o_j * torch.tanh(c_j)
        return h_j, c_j

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, state: LSTMState | None = None
    ) -> tuple[Tensor, LSTMState]:
        """Run the recurrence over ``x`` [B, T, input_size].

        Args:
            x: inputs, batch first.
            lengths: optional [B] valid lengths (default: all ``T``); steps past a sequence's
                length leave its state unchanged and output 0.
            state: optional ``(h0, c0)``, each [B, hidden_size]; zeros by default.

        Returns:
            ``(outputs [B, T, hidden_size], (h_n, c_n))`` where ``h_n`` is the state after the
            last valid step (for ``reverse=True``: after the first word).
        """
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(
                f"x must have shape [B, T, {self.input_size}], got {tuple(x.shape)}."
            )
        batch, t_max, _ = x.shape
        if lengths is None:
            lengths = torch.full((batch,), t_max, dtype=torch.long, device=x.device)
        lengths = lengths.to(x.device)
        if state is None:
            h = x.new_zeros(batch, self.hidden_size)
            c = x.new_zeros(batch, self.hidden_size)
        else:
            h, c = state
        outputs = [x.new_zeros(batch, self.hidden_size) for _ in range(t_max)]
        steps = range(t_max - 1, -1, -1) if self.reverse else range(t_max)
        for j in steps:
            valid = (lengths > j).unsqueeze(1)
            h_new, c_new = self.step(x[:, j], h, c)
            h = torch.where(valid, h_new, h)
            c = torch.where(valid, c_new, c)
            outputs[j] = torch.where(valid, h_new, torch.zeros_like(h_new))
        return torch.stack(outputs, dim=1), (h, c)


class HandBiLSTM(nn.Module):
    """Bidirectional wrapper (Eq. 13): ``h_t = →h_t ⊕ ←h_t`` from two :class:`HandLSTM`."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.forward_lstm = HandLSTM(input_size, hidden_size, reverse=False)
        self.backward_lstm = HandLSTM(input_size, hidden_size, reverse=True)

    @classmethod
    def from_torch(cls, lstm: nn.LSTM) -> HandBiLSTM:
        """Copy both directions of a bidirectional one-layer ``torch.nn.LSTM``."""
        if not lstm.bidirectional:
            raise ValueError("HandBiLSTM.from_torch needs a bidirectional LSTM; use HandLSTM instead.")
        bi = cls(lstm.input_size, lstm.hidden_size)
        bi.forward_lstm = HandLSTM.from_torch(lstm, 0)
        bi.backward_lstm = HandLSTM.from_torch(lstm, 1)
        return bi

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, LSTMState]:
        """Returns ``(outputs [B, T, 2H], (h_n [2, B, H], c_n [2, B, H]))`` like ``nn.LSTM``."""
        out_f, (h_f, c_f) = self.forward_lstm(x, lengths)
        out_b, (h_b, c_b) = self.backward_lstm(x, lengths)
        return torch.cat([out_f, out_b], dim=2), (torch.stack([h_f, h_b]), torch.stack([c_f, c_b]))
