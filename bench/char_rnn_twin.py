"""The PyTorch twin of examples/char_rnn/model.lua (shared by
bench/lstm_step.py and bench/char_rnn_twin_train.py): embedding, a
batch-first multi-layer LSTM with dropout between layers, a linear
read-out."""
import torch.nn as tnn


class CharRNN(tnn.Module):
    def __init__(self, vocab, embed=128, hidden=512, layers=2, dropout=0.0):
        super().__init__()
        self.embed = tnn.Embedding(vocab, embed)
        self.lstm = tnn.LSTM(embed, hidden, num_layers=layers, dropout=dropout, batch_first=True)
        self.head = tnn.Linear(hidden, vocab)

    def forward(self, idx, state=None):
        out, final = self.lstm(self.embed(idx), state)
        return self.head(out), final
