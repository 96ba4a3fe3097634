"""The text tower: a two-tower recommender whose item tower is a fine-tuned language model.

* :func:`item_texts` — each item's text **augmented with its KG facts**, as a
  ``(title, facts)`` pair that the tokenizer joins with its separator:
  ``title [SEP] brand: Acme; category: Audio > Earbuds; color: black``.  The facts are the
  item's KG edges (:func:`~kgwb.kg.catalog.catalog_graph` of the dataset, or the graph given:
  brand, category path, structured and extracted attribute values); ``with_facts=False`` gives
  the title alone (the ablation).
* :class:`TextTower` (``text-tower``) — item vector = linear projection of the mean-pooled
  encoder output (default the bundled MiniLM; any Hugging Face name or folder through
  ``encoder=``), user vector = a learned embedding; both L2-normalised, score = cosine /
  ``temperature``.  Trained with in-batch negatives (sampled softmax over the batch's distinct
  positive items, with the logQ correction of Yi et al., RecSys'19, for their popularity-biased
  sampling).  Only the top ``train_layers`` transformer layers are fine-tuned (``-1``: all),
  which is what makes CPU runs affordable; the encoder's learning rate is ``encoder_lr``.

Because an item's vector depends only on its text, an item without interactions (a held-out
cold item, a new product) is scored like any other.  The item vectors are cached after
training in the persistent buffer ``item_vectors`` — saved with the weights in
``checkpoints/best.safetensors`` — so serving and ``kgwb recommend`` read them instead of
re-encoding the catalogue.  Mixed precision comes from :func:`~kgwb.train.recommend.
train_recommender` (bf16 autocast on CUDA, float32 on CPU); encoding for evaluation runs in
batches of similar length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from kgwb.train.data import InteractionData
from kgwb.train.models import Recommender

if TYPE_CHECKING:  # pragma: no cover
    from kgwb.data.schema import Dataset
    from kgwb.kg.model import KnowledgeGraph

#: how a KG relation reads in an item's text
FACT_LABELS = {"produced_by": "brand", "belongs_to": "category"}


def _fact_label(relation: str) -> str:
    if relation in FACT_LABELS:
        return FACT_LABELS[relation]
    label = relation[4:] if relation.startswith("has_") else relation
    return label.replace("_", " ")


def item_texts(
    dataset: Dataset,
    item_ids: Sequence[str],
    *,
    kg: KnowledgeGraph | None = None,
    with_facts: bool = True,
) -> list[tuple[str, str]]:
    """``(title, facts)`` of every item of ``item_ids`` (module docstring); missing → ``""``.

    A ``belongs_to`` fact reads as the item's ``category_path`` when the catalog has one.
    Item-to-item relations (``also_bought``) are not facts of the text.
    """
    items = dataset.items.drop_duplicates("item_id")
    index = items["item_id"].astype("string").astype(object)
    ids = pd.Index(np.asarray(item_ids, dtype=object))
    title = pd.Series("", index=ids, dtype=object)
    if "title" in items.columns:
        title = pd.Series(items["title"].astype("string").fillna("").to_numpy(), index=index)
        title = title.reindex(ids).fillna("")
    if not with_facts:
        return [(str(t), "") for t in title]
    if kg is None:
        from kgwb.kg.catalog import catalog_graph

        kg = catalog_graph(dataset)
    edges = kg.edges[["head", "relation", "tail"]].astype("string")
    edges = edges[edges["head"].str.startswith("item:") & ~edges["tail"].str.startswith("item:")]
    edges = edges[~edges["tail"].str.startswith("user:")].dropna()
    names = pd.Series(kg.nodes["name"].astype("string").to_numpy(), index=kg.nodes["node_id"])
    names = names[~names.index.duplicated()]
    value = edges["tail"].map(names).fillna(edges["tail"].str.split(":", n=1).str[-1])
    value = value.str.split("=", n=1).str[-1]  # value:color=red → red
    if "category_path" in items.columns:
        path = pd.Series(items["category_path"].astype("string").to_numpy(), index=index)
        item_of = edges["head"].str.slice(5)
        is_cat = edges["relation"] == "belongs_to"
        value = value.where(~is_cat, item_of.map(path).fillna(value))
    fact = edges["relation"].map(_fact_label) + ": " + value
    frame = pd.DataFrame({"item": edges["head"].str.slice(5), "fact": fact}).drop_duplicates()
    facts = frame.groupby("item", sort=False)["fact"].agg("; ".join)
    facts = facts.reindex(ids).fillna("")
    return [(str(t), str(f)) for t, f in zip(title, facts)]


class TextTower(Recommender):
    """Two-tower model with a fine-tuned language-model item tower (module docstring)."""

    name = "text-tower"
    uses_item_text = True

    def __init__(
        self,
        data: InteractionData,
        *,
        item_texts: Sequence[tuple[str, str]] | None = None,
        encoder: str | None = None,
        max_length: int = 64,
        train_layers: int = 2,
        temperature: float = 0.05,
        logq: bool = True,
        encoder_lr: float = 5e-5,
        encode_batch_size: int = 256,
        cache_frozen: bool = True,
        **kw: Any,
    ) -> None:
        kw.pop("layers", None)
        kw.pop("text_features", None)
        super().__init__(data, **kw)
        if item_texts is None or len(item_texts) != data.n_items:
            raise ValueError(
                f"text-tower needs item_texts, one (title, facts) pair per item ({data.n_items})"
            )
        from transformers import AutoModel, AutoTokenizer

        from kgwb.text.encoder import quiet_loading, resolve_encoder

        path = resolve_encoder(encoder)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        with quiet_loading():
            self.encoder = AutoModel.from_pretrained(path)
        self.temperature, self.logq, self.encoder_lr = temperature, logq, encoder_lr
        self.encode_batch_size = encode_batch_size
        self.frozen_layers = self._freeze(train_layers)
        # the frozen bottom layers give the same output every step: computed once per item
        cache_bytes = data.n_items * max_length * self.encoder.config.hidden_size * 4
        self.cache_frozen = cache_frozen and self.frozen_layers > 0 and cache_bytes < 2**31
        self._hidden: torch.Tensor | None = None
        hidden = self.encoder.config.hidden_size
        self.item_proj = nn.Linear(hidden, self.dim)
        self.user_emb = nn.Embedding(self.n_users, self.dim)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        titles = [t for t, _ in item_texts]
        facts = [f if f else None for _, f in item_texts]
        tok = self._tokenize(titles, facts, max_length)
        self.register_buffer("input_ids", tok["input_ids"], persistent=False)
        self.register_buffer("attention_mask", tok["attention_mask"], persistent=False)
        log_pop = torch.as_tensor(np.log(data.item_popularity() + 1.0), dtype=torch.float32)
        self.register_buffer("log_pop", log_pop, persistent=False)
        self.register_buffer("item_vectors", torch.zeros(self.n_items, self.dim))
        self.register_buffer("cache_valid", torch.zeros((), dtype=torch.bool))

    def _tokenize(self, titles, facts, max_length: int) -> dict[str, torch.Tensor]:
        pairs = [f is not None for f in facts]
        if any(pairs):  # title [SEP] facts, cut from the longer side first
            texts = [(t, f if f is not None else "") for t, f in zip(titles, facts)]
            return self.tokenizer(
                [t for t, _ in texts],
                [f for _, f in texts],
                padding="max_length",
                truncation="longest_first",
                max_length=max_length,
                return_tensors="pt",
            )
        return self.tokenizer(
            titles,
            padding="max_length",
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )

    def _layers(self):
        return getattr(getattr(self.encoder, "encoder", None), "layer", None)

    def _freeze(self, train_layers: int) -> int:
        """Freeze the embeddings and all but the top ``train_layers`` layers; returns how many
        layers are frozen."""
        layers = self._layers()
        if train_layers < 0 or layers is None:  # all, or not a BERT-like layout: tune it all
            return 0
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        frozen = max(len(layers) - train_layers, 0)
        for layer in list(layers)[frozen:]:
            for p in layer.parameters():
                p.requires_grad_(True)
        return frozen

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._hidden = None
        return self

    @torch.no_grad()
    def _frozen_hidden(self) -> torch.Tensor:
        """Hidden states after the frozen layers, for every item (computed once, eval mode)."""
        if self._hidden is None:
            was_training = self.encoder.training
            self.encoder.eval()
            parts = []
            for start in range(0, self.n_items, self.encode_batch_size):
                sl = slice(start, start + self.encode_batch_size)
                out = self.encoder(
                    input_ids=self.input_ids[sl],
                    attention_mask=self.attention_mask[sl],
                    output_hidden_states=True,
                )
                parts.append(out.hidden_states[self.frozen_layers].float())
            self._hidden = torch.cat(parts)
            self.encoder.train(was_training)
        return self._hidden

    def _top_layers(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The trainable top layers over cached hidden states (transformers' own layers)."""
        make_masks = getattr(self.encoder, "_create_attention_masks", None)
        if make_masks is not None:  # transformers 5: the mask its attention backend expects
            extended = make_masks(
                attention_mask=mask,
                encoder_attention_mask=None,
                embedding_output=hidden,
                encoder_hidden_states=None,
                cache=None,
            )[0]
        else:  # transformers 4: the additive (B, 1, 1, L) mask
            extended = self.encoder.get_extended_attention_mask(mask, mask.shape)
        for layer in list(self._layers())[self.frozen_layers :]:
            out = layer(hidden, attention_mask=extended)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Adam parameter groups: the encoder at ``encoder_lr``, the rest at ``lr``."""
        enc = [p for p in self.encoder.parameters() if p.requires_grad]
        rest = [p for n, p in self.named_parameters() if not n.startswith("encoder.")]
        groups = [{"params": rest, "lr": lr}]
        if enc:
            groups.append({"params": enc, "lr": self.encoder_lr})
        return groups

    # -- towers ----------------------------------------------------------------------
    def encode_items(self, items: torch.Tensor) -> torch.Tensor:
        """Unit item vectors of the item indices ``items`` (gradients flow when training)."""
        mask = self.attention_mask[items]
        length = int(mask.sum(1).max()) if len(items) else 1
        ids, mask = self.input_ids[items, :length], mask[:, :length]
        if self.cache_frozen:
            hidden = self._frozen_hidden()[items, :length]
            hidden = self._top_layers(hidden.to(self.item_proj.weight.dtype), mask)
        else:
            hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(self.item_proj(pooled.to(self.item_proj.weight.dtype)).float(), dim=-1)

    def users(self, users: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.user_emb(users), dim=-1)

    def on_epoch_start(self, generator: torch.Generator) -> None:
        self.cache_valid.fill_(False)

    @torch.no_grad()
    def on_eval(self) -> None:
        if bool(self.cache_valid):
            return
        lengths = self.attention_mask.sum(1)
        order = torch.argsort(lengths, descending=True)  # batches of similar length pad little
        for start in range(0, self.n_items, self.encode_batch_size):
            idx = order[start : start + self.encode_batch_size]
            self.item_vectors[idx] = self.encode_items(idx).to(self.item_vectors.dtype)
        self.cache_valid.fill_(True)

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training:
            raise RuntimeError("text-tower scores the catalogue in eval mode only")
        self.on_eval()
        all_users = torch.arange(self.n_users, device=self.item_vectors.device)
        return self.users(all_users) / self.temperature, self.item_vectors

    # -- in-batch sampled softmax --------------------------------------------------
    def bpr_loss(self, users, pos, neg, reg):
        """``(softmax loss, l2)`` over the batch's distinct positives (``neg`` is unused)."""
        self.cache_valid.fill_(False)
        items, target = torch.unique(pos, return_inverse=True)
        u = self.users(users)
        v = self.encode_items(items)
        logits = u @ v.t() / self.temperature
        if self.logq:
            logits = logits - self.log_pop[items][None, :]
        # another positive of the same user in the batch is not a negative
        row, other = torch.nonzero(users[:, None] == users[None, :], as_tuple=True)
        other_pos = torch.zeros_like(logits, dtype=torch.bool)
        other_pos[row, target[other]] = True
        other_pos[torch.arange(len(users), device=users.device), target] = False
        logits = logits.masked_fill(other_pos, float("-inf"))
        loss = F.cross_entropy(logits.float(), target)
        l2 = self.user_emb(users).float().pow(2).sum()
        return loss, reg * 0.5 * l2 / len(users)


