"""Tests for csagan.text: the BiLSTM text encoder (Eqs. 13-15) and the hand-written LSTM."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from csagan.text import HandBiLSTM, HandLSTM, RNNEncoder, freeze, load_attngan_text_encoder

ATTNGAN_TEXT_KEYS = {
    "encoder.weight",
    "rnn.weight_ih_l0",
    "rnn.weight_hh_l0",
    "rnn.bias_ih_l0",
    "rnn.bias_hh_l0",
    "rnn.weight_ih_l0_reverse",
    "rnn.weight_hh_l0_reverse",
    "rnn.bias_ih_l0_reverse",
    "rnn.bias_hh_l0_reverse",
}


def _captions(gen: torch.Generator, lengths: list[int], t_max: int, n_words: int) -> torch.Tensor:
    caps = torch.zeros(len(lengths), t_max, dtype=torch.long)
    for b, n in enumerate(lengths):
        caps[b, :n] = torch.randint(1, n_words, (n,), generator=gen)
    return caps


def test_hand_lstm_equals_torch_lstm_one_direction() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7, 1, batch_first=True).double()
    x = torch.randn(3, 6, 5, dtype=torch.float64)
    ref_out, (ref_h, ref_c) = lstm(x)
    out, (h, c) = HandLSTM.from_torch(lstm)(x)
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, ref_h[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(c, ref_c[0], atol=1e-6, rtol=0)


def test_hand_bilstm_equals_torch_packed_variable_lengths() -> None:
    torch.manual_seed(1)
    lstm = nn.LSTM(4, 6, 1, batch_first=True, bidirectional=True)
    x = torch.randn(4, 5, 4)
    lengths = torch.tensor([5, 2, 4, 1])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    ref_packed, (ref_h, ref_c) = lstm(packed)
    ref_out, _ = nn.utils.rnn.pad_packed_sequence(ref_packed, batch_first=True, total_length=5)
    out, (h, c) = HandBiLSTM.from_torch(lstm)(x, lengths)
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, ref_h, atol=1e-6, rtol=0)
    torch.testing.assert_close(c, ref_c, atol=1e-6, rtol=0)


def test_hand_lstm_step_is_eq_14_15() -> None:
    torch.manual_seed(2)
    cell = HandLSTM(3, 2).double()
    t, h0, c0 = (torch.randn(1, n, dtype=torch.float64) for n in (3, 2, 2))

    def gate(w: torch.Tensor, u: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return w @ t[0] + u @ h0[0] + b

    i = torch.sigmoid(gate(cell.W_i, cell.U_i, cell.b_i))
    f = torch.sigmoid(gate(cell.W_f, cell.U_f, cell.b_f))
    o = torch.sigmoid(gate(cell.W_o, cell.U_o, cell.b_o))
    c_tilde = torch.tanh(gate(cell.W_c, cell.U_c, cell.b_c))
    c_ref = f * c0[0] + i * c_tilde
    h_ref = o * torch.tanh(c_ref)
    h, c = cell.step(t, h0, c0)
    torch.testing.assert_close(h[0], h_ref)
    torch.testing.assert_close(c[0], c_ref)


def test_rnn_encoder_shapes_and_padding() -> None:
    gen = torch.Generator().manual_seed(3)
    enc = RNNEncoder(20).eval()
    caps = _captions(gen, [18, 5, 1], 18, 20)
    words, sent = enc(caps, torch.tensor([18, 5, 1]))
    assert words.shape == (3, 256, 18)
    assert sent.shape == (3, 256)
    assert torch.all(words[1, :, 5:] == 0) and torch.all(words[2, :, 1:] == 0)


def test_rnn_encoder_sentence_code_is_last_states_of_both_directions() -> None:
    gen = torch.Generator().manual_seed(4)
    enc = RNNEncoder(15, hidden=8).eval()
    caps = _captions(gen, [3, 6], 6, 15)
    lens = torch.tensor([3, 6])
    words, sent = enc(caps, lens)
    for b, n in enumerate([3, 6]):
        # forward half: output at the last valid word; backward half: output at the first word
        torch.testing.assert_close(sent[b, :4], words[b, :4, n - 1])
        torch.testing.assert_close(sent[b, 4:], words[b, 4:, 0])


def test_rnn_encoder_packed_equals_per_sample_unpadded() -> None:
    gen = torch.Generator().manual_seed(5)
    enc = RNNEncoder(30, hidden=16).eval()
    lengths = [7, 2, 5, 7, 1]
    caps = _captions(gen, lengths, 9, 30)  # extra padding beyond the longest caption
    words, sent = enc(caps, torch.tensor(lengths))
    for b, n in enumerate(lengths):
        w1, s1 = enc(caps[b : b + 1, :n], torch.tensor([n]))
        torch.testing.assert_close(words[b, :, :n], w1[0], atol=1e-6, rtol=0)
        torch.testing.assert_close(sent[b], s1[0], atol=1e-6, rtol=0)


def test_rnn_encoder_matches_hand_bilstm() -> None:
    gen = torch.Generator().manual_seed(6)
    enc = RNNEncoder(12, emb_dim=6, hidden=10).eval()
    lengths = torch.tensor([4, 2, 3])
    caps = _captions(gen, lengths.tolist(), 4, 12)
    words, sent = enc(caps, lengths)
    out, (h, _) = HandBiLSTM.from_torch(enc.rnn)(enc.encoder(caps), lengths)
    torch.testing.assert_close(words, out.transpose(1, 2), atol=1e-6, rtol=0)
    torch.testing.assert_close(sent, torch.cat([h[0], h[1]], dim=1), atol=1e-6, rtol=0)


def test_rnn_encoder_state_dict_keys_are_attngan() -> None:
    enc = RNNEncoder(50)
    assert set(enc.state_dict()) == ATTNGAN_TEXT_KEYS
    assert enc.encoder.weight.shape == (50, 300)
    assert enc.rnn.weight_hh_l0.shape == (4 * 128, 128)
    assert float(enc.encoder.weight.detach().abs().max()) <= 0.1


def test_rnn_encoder_save_load_round_trip(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(7)
    enc = RNNEncoder(40).eval()
    path = tmp_path / "text_encoder200.pth"
    torch.save(enc.state_dict(), path)
    loaded = load_attngan_text_encoder(path, n_words=40)
    assert not loaded.training
    caps = _captions(gen, [4, 3], 5, 40)
    lens = torch.tensor([4, 3])
    for a, b in zip(enc(caps, lens), loaded(caps, lens), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_load_text_encoder_missing_file_names_weights(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="text_encoder200.pth.*text_encoder100.pth"):
        load_attngan_text_encoder(tmp_path / "nope.pth")


def test_load_text_encoder_vocabulary_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "enc.pth"
    torch.save(RNNEncoder(40).state_dict(), path)
    with pytest.raises(ValueError, match="40 words.*has 41"):
        load_attngan_text_encoder(path, n_words=41)


def test_rnn_encoder_rejects_bad_lengths_and_indices() -> None:
    enc = RNNEncoder(10)
    caps = torch.ones(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="cap_lens"):
        enc(caps, torch.tensor([5, 2]))
    with pytest.raises(ValueError, match="cap_lens"):
        enc(caps, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="vocabular"):
        enc(caps * 10, torch.tensor([4, 2]))


def test_freeze_stops_parameter_gradients_but_not_input_gradients() -> None:
    lstm = nn.LSTM(3, 4, batch_first=True)
    freeze(lstm)
    assert not lstm.training and all(not p.requires_grad for p in lstm.parameters())
    x = torch.randn(1, 2, 3, requires_grad=True)
    lstm(x)[0].sum().backward()
    assert x.grad is not None and all(p.grad is None for p in lstm.parameters())


def test_rnn_encoder_explicit_zero_state_equals_default_and_dropout_only_in_training() -> None:
    gen = torch.Generator().manual_seed(8)
    enc = RNNEncoder(25, hidden=12).eval()
    caps, lens = _captions(gen, [3, 5], 5, 25), torch.tensor([3, 5])
    default = enc(caps, lens)
    explicit = enc(caps, lens, enc.init_hidden(2))
    for a, b in zip(default, explicit, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    enc.train()
    assert not torch.equal(enc(caps, lens)[1], default[1])
