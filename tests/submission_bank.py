"""A bank of submissions for every exercise, written from the exercises' text (not from the solutions).

``BANK[grade_id]`` holds, for the exercise of that grade cell:

- ``correct``: a right answer, written differently from the notebook's solution;
- ``wrong``: {what is wrong: answer}, the obvious mistake first, then subtler ones (at least three);
- ``shortcut``: the shortest road to the visible checks' green light without solving the exercise: calling the
  library function that does the job where there is one, else special-casing what the visible checks try;
- ``tamper``: an answer cell that reassigns what a check relies on (``torch.equal``, a reference function, a
  builtin, ``==`` of what it returns) and answers wrongly: it must score what the wrong answer scores.

Every variant but ``correct`` must cost its exercise's points and no other exercise's. ``write_submission`` puts
answers into a student version, as a student hands it in.
"""



def tampered(patch: str, wrong: str) -> tuple[str, str]:
    """A tampering answer: ``patch`` (lines that disarm the checks) above the named wrong answer of the same exercise,
    resolved into one string once the bank is built."""
    return patch, wrong

BANK = {
    '00a-cue-at': {
        "correct": '''def cue_at(cues, t):
    for cue in cues:
        if cue["start"] <= t <= cue["end"]:
            return cue["text"]
    return None''',
        "wrong": {
            'the last cue that started, even after it ended':
            '''def cue_at(cues, t):
    shown = None
    for cue in cues:
        if cue["start"] <= t:
            shown = cue["text"]
    return shown''',
            'the end excluded':
            '''def cue_at(cues, t):
    for cue in cues:
        if cue["start"] <= t < cue["end"]:
            return cue["text"]
    return None''',
            'an empty string where no cue shows':
            '''def cue_at(cues, t):
    return next((cue["text"] for cue in cues if cue["start"] <= t <= cue["end"]), "")''',
        },
        "shortcut": '''from minimodels.minigpt4video.sampling import sample_with_subtitles
from minimodels.data.subtitles import Cue


def cue_at(cues, t):  # the library's subtitle aligner, asked about one frame at time t
    as_cues = [Cue(c["start"], c["end"], c["text"]) for c in cues]
    frames, said = sample_with_subtitles(2, 1 / t if t else 1.0, 2, as_cues)
    return said[-1].strip() if said[-1] else None''',
        "tamper": tampered('import builtins\nbuiltins.all = lambda *args: True  # every check that reads all() passes',
                           'the last cue that started, even after it ended'),
    },
    '00b-direction': {
        "correct": '''def direction_from_positions(xs, ys):
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    if abs(dx) > abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"''',
        "wrong": {
            'y read as growing upwards':
            '''def direction_from_positions(xs, ys):
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    if abs(dx) > abs(dy):
        return "right" if dx > 0 else "left"
    return "up" if dy > 0 else "down"''',
            'x decides whenever it moved at all':
            '''def direction_from_positions(xs, ys):
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    if dx != 0:
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"''',
            'the steps compared with their signs':
            '''def direction_from_positions(xs, ys):
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    if dx > dy:
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"''',
        },
        "shortcut": '''def direction_from_positions(xs, ys):  # look the clip up in the training table
    for row in train:
        if row["xs"][:2] == list(xs[:2]) and row["ys"][:2] == list(ys[:2]):
            return row["direction"]
    return "right"''',
        "tamper": '''np.mean = lambda *args, **kwargs: 1.0  # "right on 100% of the clips"


def direction_from_positions(xs, ys):
    return "up" if ys[1] > ys[0] else "down"''',
    },
    '00c-middle-frames': {
        "correct": '''def middle_frames(total, num_frames):
    return np.floor((np.arange(num_frames) + 0.5) * total / num_frames).astype(int)''',
        "wrong": {
            'the first frame of each stretch, as the loader':
            '''def middle_frames(total, num_frames):
    return np.floor(np.arange(num_frames) * total / num_frames).astype(int)''',
            'the middle rounded to the nearest frame':
            '''def middle_frames(total, num_frames):
    return np.round((np.arange(num_frames) + 0.5) * total / num_frames).astype(int)''',
            'linspace plus half a stretch: a whole middle lands just below itself':
            '''def middle_frames(total, num_frames):
    return (np.linspace(0, total, num_frames, endpoint=False) + total / (2 * num_frames)).astype(int)''',
            'a list, not a NumPy array':
            '''def middle_frames(total, num_frames):
    return [(2 * i + 1) * total // (2 * num_frames) for i in range(num_frames)]''',
        },
        "shortcut": '''from minimodels.data.video_io import sample_indices


def middle_frames(total, num_frames):  # every other frame of twice as many, halved
    return sample_indices(2 * total, 2 * num_frames)[1::2] // 2''',
        "tamper": tampered('np.array_equal = lambda *args, **kwargs: True',
                           'the first frame of each stretch, as the loader'),
    },
    '01a-unpatchify': {
        "correct": '''def unpatchify(tokens, p, height, width):
    B, T, N, K = tokens.shape
    C = K // (p * p)
    x = tokens.reshape(B, T, height // p, width // p, p, p, C)
    return x.transpose(3, 4).reshape(B, T, height, width, C)''',
        "wrong": {
            'a plain reshape: patches laid side by side as if they were rows':
            '''def unpatchify(tokens, p, height, width):
    B, T, N, K = tokens.shape
    return tokens.reshape(B, T, height, width, K // (p * p))''',
            'each patch read as (channel, row, column)':
            '''def unpatchify(tokens, p, height, width):
    B, T, N, K = tokens.shape
    C = K // (p * p)
    x = tokens.reshape(B, T, height // p, width // p, C, p, p)
    return x.permute(0, 1, 2, 5, 3, 6, 4).reshape(B, T, height, width, C)''',
            'the grid read column by column: right only for square frames':
            '''def unpatchify(tokens, p, height, width):
    B, T, N, K = tokens.shape
    C = K // (p * p)
    x = tokens.reshape(B, T, width // p, height // p, p, p, C)
    return x.permute(0, 1, 3, 4, 2, 5, 6).reshape(B, T, height, width, C)''',
        },
        "shortcut": '''def unpatchify(tokens, p, height, width):  # patchify an index grid: where each value goes
    B, T, N, K = tokens.shape
    C = K // (p * p)
    where = video_vit.patchify(torch.arange(height * width * C).view(1, 1, height, width, C), p).flatten()
    out = torch.empty(B, T, height * width * C, dtype=tokens.dtype)
    out[..., where] = tokens.reshape(B, T, -1)
    return out.view(B, T, height, width, C)''',
        "tamper": tampered('torch.equal = lambda *args, **kwargs: True',
                           'a plain reshape: patches laid side by side as if they were rows'),
    },
    '01b-temporal-view': {
        "correct": '''def temporal_view(x, B):
    BT, N, D = x.shape
    return x.view(B, BT // B, N, D).permute(0, 2, 1, 3).reshape(B * N, BT // B, D)''',
        "wrong": {
            'a reshape without the transpose':
            '''def temporal_view(x, B):
    BT, N, D = x.shape
    return x.reshape(B * N, BT // B, D)''',
            'the batch read as (t b): frames of different clips mixed up':
            '''def temporal_view(x, B):
    BT, N, D = x.shape
    return x.reshape(BT // B, B, N, D).permute(1, 2, 0, 3).reshape(B * N, BT // B, D)''',
            '(B·T, N) transposed whole: right for one clip only':
            '''def temporal_view(x, B):
    BT, N, D = x.shape
    return x.transpose(0, 1).reshape(B * N, BT // B, D)''',
        },
        "shortcut": '''from einops import rearrange


def temporal_view(x, B):
    return rearrange(x, "(b t) n d -> (b n) t d", b=B)''',
        "tamper": tampered('torch.equal = lambda *args, **kwargs: True\ntorch.allclose = lambda *args, **kwargs: True',
                           'the batch read as (t b): frames of different clips mixed up'),
    },
    '01c-soft-cap-mask': {
        "correct": '''def capped_attention(q, k, v, cap, key_mask):
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / q.shape[-1] ** 0.5
    if cap is not None:
        scores = torch.tanh(scores / cap) * cap
    scores = scores.masked_fill(~key_mask[:, None, None, :], -1e30)
    return torch.einsum("bhqk,bhkd->bhqd", scores.softmax(-1), v)''',
        "wrong": {
            'capped after the softmax: the weights, not the logits':
            '''def capped_attention(q, k, v, cap, key_mask):
    logits = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).masked_fill(~key_mask[:, None, None, :], float("-inf"))
    weights = logits.softmax(dim=-1)
    if cap is not None:
        weights = cap * torch.tanh(weights / cap)
    return weights @ v''',
            'masked before the cap: a hidden key comes back at -cap':
            '''def capped_attention(q, k, v, cap, key_mask):
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    if cap is not None:
        logits = cap * torch.tanh(logits / cap)
    return logits.softmax(dim=-1) @ v''',
            'the mask laid over the queries, not the keys':
            '''def capped_attention(q, k, v, cap, key_mask):
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if cap is not None:
        logits = cap * torch.tanh(logits / cap)
    logits = logits.masked_fill(~key_mask[:, None, :, None], -1e9)
    return logits.softmax(dim=-1) @ v''',
            'no scaling by the square root of head_dim':
            '''def capped_attention(q, k, v, cap, key_mask):
    logits = q @ k.transpose(-1, -2)
    if cap is not None:
        logits = cap * torch.tanh(logits / cap)
    logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    return logits.softmax(dim=-1) @ v''',
        },
        "shortcut": '''from minimodels.nn.attention import manual_attention


def capped_attention(q, k, v, cap, key_mask):
    return manual_attention(q, k, v, key_mask=key_mask, logit_cap=cap)''',
        "tamper": '''import minimodels.nn.attention
torch.allclose = lambda *args, **kwargs: True
minimodels.nn.attention.manual_attention = (  # the check's reference is now this answer
    lambda q, k, v, key_mask=None, logit_cap=None: capped_attention(q, k, v, logit_cap, key_mask))


def capped_attention(q, k, v, cap, key_mask):
    weights = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(dim=-1)
    if cap is not None:
        weights = cap * torch.tanh(weights / cap)
    return weights @ v''',
    },
    '02a-infonce': {
        "correct": '''def infonce_from_logits(logits):
    matches = torch.diagonal(logits)
    rows = torch.logsumexp(logits, dim=1) - matches  # video -> text, one per video
    cols = torch.logsumexp(logits, dim=0) - matches  # text -> video, one per text
    return 0.5 * (rows.mean() + cols.mean())''',
        "wrong": {
            'log(sum(exp)) instead of logsumexp: overflows at low temperature':
            '''def infonce_from_logits(logits):
    diagonal = logits.diagonal()
    video_to_text = (logits.exp().sum(dim=1).log() - diagonal).mean()
    text_to_video = (logits.exp().sum(dim=0).log() - diagonal).mean()
    return (video_to_text + text_to_video) / 2''',
            'video -> text only':
            '''def infonce_from_logits(logits):
    return (logits.logsumexp(dim=1) - logits.diagonal()).mean()''',
            'summed over the batch, not averaged':
            '''def infonce_from_logits(logits):
    diagonal = logits.diagonal()
    return ((logits.logsumexp(dim=1) - diagonal).sum() + (logits.logsumexp(dim=0) - diagonal).sum()) / 2''',
            'shape (1,), not a scalar':
            '''def infonce_from_logits(logits):
    diagonal = logits.diagonal()
    both = (logits.logsumexp(dim=1) - diagonal).mean() + (logits.logsumexp(dim=0) - diagonal).mean()
    return (both / 2).reshape(1)''',
        },
        "shortcut": '''def infonce_from_logits(logits):  # the walk-through's loss, on the logits
    target = torch.arange(len(logits))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2''',
        "tamper": '''torch.allclose = lambda *args, **kwargs: True


def infonce_from_logits(logits):
    diagonal = logits.diagonal()
    rows, cols = logits.exp().sum(dim=1).log() - diagonal, logits.exp().sum(dim=0).log() - diagonal
    return (rows.mean() + cols.mean()) / 2''',
    },
    '02b-tube-mask': {
        "correct": '''def tube_mask(batch, frames, tokens_per_frame, drop_ratio, generator):
    kept = tube_keep(batch, tokens_per_frame, drop_ratio, generator)
    mask = torch.zeros(batch, frames, tokens_per_frame, dtype=torch.bool)
    for clip in range(batch):
        mask[clip, :, kept[clip]] = True
    return mask''',
        "wrong": {
            'True where dropped, not kept':
            '''def tube_mask(batch, frames, tokens_per_frame, drop_ratio, generator):
    kept = tube_keep(batch, tokens_per_frame, drop_ratio, generator)
    mask = torch.ones(batch, tokens_per_frame, dtype=torch.bool)
    mask.scatter_(1, kept, False)
    return mask[:, None, :].expand(batch, frames, tokens_per_frame)''',
            "the positions with the highest noise: not tube_keep's draw":
            '''def tube_mask(batch, frames, tokens_per_frame, drop_ratio, generator):
    keep = round(tokens_per_frame * (1 - drop_ratio))
    noise = torch.rand(batch, tokens_per_frame, generator=generator)
    kept = noise.argsort(dim=1, descending=True)[:, :keep]
    mask = torch.zeros(batch, tokens_per_frame, dtype=torch.bool).scatter_(1, kept, True)
    return mask[:, None, :].expand(batch, frames, tokens_per_frame)''',
            'one draw for the whole batch':
            '''def tube_mask(batch, frames, tokens_per_frame, drop_ratio, generator):
    kept = tube_keep(1, tokens_per_frame, drop_ratio, generator)
    mask = torch.zeros(1, tokens_per_frame, dtype=torch.bool).scatter_(1, kept, True)
    return mask[:, None, :].expand(batch, frames, tokens_per_frame)''',
        },
        "shortcut": '''from minimodels.nn.masking import stage2_keep


def tube_mask(batch, frames, tokens_per_frame, drop_ratio, generator):  # stage 2's tube, at this ratio
    return stage2_keep("tube", batch, frames, math.isqrt(tokens_per_frame), drop_ratio, generator)''',
        "tamper": tampered('torch.equal = lambda *args, **kwargs: True', 'True where dropped, not kept'),
    },
    '02c-v2t-recall': {
        "correct": '''def video_to_text_recall(similarity, k):
    hits = 0
    for i, row in enumerate(similarity):
        if i in row.argsort(descending=True)[:k].tolist():
            hits += 1
    return 100.0 * hits / len(similarity)''',
        "wrong": {
            'the columns read: text -> video':
            '''def video_to_text_recall(similarity, k):
    best = similarity.T.topk(k, dim=1).indices
    found = (best == torch.arange(len(similarity))[:, None]).any(dim=1)
    return 100.0 * found.float().mean().item()''',
            'the top k + 1 counted':
            '''def video_to_text_recall(similarity, k):
    better = (similarity > similarity.diagonal()[:, None]).sum(dim=1)
    return 100.0 * (better <= k).float().mean().item()''',
            'a share, not a percentage':
            '''def video_to_text_recall(similarity, k):
    best = similarity.topk(k, dim=1).indices
    return (best == torch.arange(len(similarity))[:, None]).any(dim=1).float().mean().item()''',
            'a tensor, not a float':
            '''def video_to_text_recall(similarity, k):
    best = similarity.topk(k, dim=1).indices
    return 100.0 * (best == torch.arange(len(similarity))[:, None]).any(dim=1).float().mean()''',
        },
        "shortcut": '''from minimodels.eval.retrieval import ranks


def video_to_text_recall(similarity, k):
    return 100.0 * (ranks(similarity) <= k).float().mean().item()''',
        "tamper": '''class Percent(float):  # equal to anything, between anything
    __eq__ = __le__ = __ge__ = lambda self, other: True
    __hash__ = float.__hash__


def video_to_text_recall(similarity, k):
    best = similarity.T.topk(k, dim=1).indices
    return Percent(100.0 * (best == torch.arange(len(similarity))[:, None]).any(dim=1).float().mean().item())''',
    },
    '03a-unshuffle': {
        "correct": '''def unshuffle(slots, perm):
    inverse = perm.argsort(dim=1)  # position j sits in slot inverse[j]
    return slots.gather(1, inverse[..., None].expand_as(slots))''',
        "wrong": {
            'the shuffle applied again, not undone':
            '''def unshuffle(slots, perm):
    return torch.stack([row[order] for row, order in zip(slots, perm)])''',
            "the first clip's inverse used for every clip":
            '''def unshuffle(slots, perm):
    return slots[:, perm[0].argsort()]''',
            'the inverse taken across the batch (argsort over dim 0)':
            '''def unshuffle(slots, perm):
    inverse = perm.argsort(dim=0)
    return slots.gather(1, inverse[..., None].expand_as(slots))''',
        },
        "shortcut": '''def unshuffle(slots, perm):  # the tokens the visible checks start from
    return x_demo''',
        "tamper": tampered('torch.equal = lambda *args, **kwargs: True', 'the shuffle applied again, not undone'),
    },
    '03b-masked-loss': {
        "correct": '''def masked_token_loss(decoder, student_tokens, seen, perm, teacher_tokens):
    predicted = decoder(student_tokens, seen, perm)
    distance = cosine_distance(predicted, teacher_tokens)
    per_clip = [row[~saw].mean() for row, saw in zip(distance, seen)]
    return torch.stack(per_clip).mean()''',
        "wrong": {
            "the mean over all masked tokens of the batch (the library's loss_masked)":
            '''def masked_token_loss(decoder, student_tokens, seen, perm, teacher_tokens):
    distance = cosine_distance(decoder(student_tokens, seen, perm), teacher_tokens)
    return distance[~seen].mean()''',
            'the targets shuffled like the inputs':
            '''def masked_token_loss(decoder, student_tokens, seen, perm, teacher_tokens):
    targets = teacher_tokens.gather(1, perm[..., None].expand_as(teacher_tokens))
    distance = cosine_distance(decoder(student_tokens, seen, perm), targets)
    return torch.stack([row[~saw].mean() for row, saw in zip(distance, seen)]).mean()''',
            'the masked slots chosen by the content they received':
            '''def masked_token_loss(decoder, student_tokens, seen, perm, teacher_tokens):
    distance = cosine_distance(decoder(student_tokens, seen, perm), teacher_tokens)
    got_mask = ~seen.gather(1, perm)
    return torch.stack([row[m].mean() for row, m in zip(distance, got_mask)]).mean()''',
        },
        "shortcut": '''from minimodels.videoprism.stage2 import stage2_loss
from minimodels.engine.config import override


def masked_token_loss(decoder, student_tokens, seen, perm, teacher_tokens):  # the library's logged loss_masked
    _, logs = stage2_loss(model, teacher, video, override(cfg, global_distill=False), rng(0, 2, "notebook"))
    return torch.tensor(logs["loss_masked"], requires_grad=True)''',
        "tamper": tampered('torch.allclose = lambda *args, **kwargs: True',
                           "the mean over all masked tokens of the batch (the library's loss_masked)"),
    },
    '03c-bevt-parts': {
        "correct": '''def bevt_parts(visible):
    masked = (~visible).any(dim=1).tolist()  # per frame
    T = len(masked)
    length = sum(masked)
    start = [t for t in range(T) if masked[t] and not masked[(t - 1) % T]][0]
    return (~visible[start]).clone(), start, length''',
        "wrong": {
            'the first masked frame: wrong for a span that wraps':
            '''def bevt_parts(visible):
    masked = ~visible.all(dim=1)
    start = int(masked.nonzero()[0, 0])
    return ~visible[start], start, int(masked.sum())''',
            'the 2-D mask read off frame 0, masked or not':
            '''def bevt_parts(visible):
    masked = ~visible.all(dim=1)
    T = len(masked)
    start = next(t for t in range(T) if masked[t] and not masked[t - 1])
    return ~visible[0], start, int(masked.sum())''',
            'the length as a tensor, not an int':
            '''def bevt_parts(visible):
    masked = ~visible.all(dim=1)
    T = len(masked)
    start = next(t for t in range(T) if masked[t] and not masked[t - 1])
    return ~visible[start], start, masked.sum()''',
        },
        "shortcut": '''def bevt_parts(visible):  # the parts the visible check builds its mask from
    return hidden_demo, 1, 2''',
        "tamper": tampered('torch.equal = lambda *args, **kwargs: True',
                           'the first masked frame: wrong for a span that wraps'),
    },
    '03d-pack-seen': {
        "correct": '''def pack_seen(tokens, seen):
    B, n, D = tokens.shape
    M = int(seen.sum(dim=1).max())
    packed = torch.zeros(B, M, D, dtype=tokens.dtype)
    keep = torch.zeros(B, M, dtype=torch.bool)
    for b in range(B):
        rows = tokens[b, seen[b]]
        packed[b, :len(rows)] = rows
        keep[b, :len(rows)] = True
    return packed, keep''',
        "wrong": {
            'boolean indexing reshaped: right only when every clip saw as many':
            '''def pack_seen(tokens, seen):
    packed = tokens[seen].view(len(tokens), -1, tokens.shape[-1])
    return packed, torch.ones(packed.shape[:2], dtype=torch.bool)''',
            'padded to the full length, not to the most a clip saw':
            '''def pack_seen(tokens, seen):
    order = (~seen).float().argsort(dim=1, stable=True)  # seen first, in order
    packed = tokens.gather(1, order[..., None].expand_as(tokens)) * seen.gather(1, order)[..., None]
    return packed, seen.gather(1, order)''',
            'the padding put first':
            '''def pack_seen(tokens, seen):
    B, n, D = tokens.shape
    M = int(seen.sum(dim=1).max())
    packed, keep = torch.zeros(B, M, D), torch.zeros(B, M, dtype=torch.bool)
    for b in range(B):
        rows = tokens[b, seen[b]]
        packed[b, M - len(rows):] = rows
        keep[b, M - len(rows):] = True
    return packed, keep''',
        },
        "shortcut": '''def pack_seen(tokens, seen):  # the global decoder takes these as they are
    return tokens, seen''',
        "tamper": tampered('torch.equal = lambda *args, **kwargs: True\ntorch.allclose = lambda *args, **kwargs: True',
                           'boolean indexing reshaped: right only when every clip saw as many'),
    },
    '04a-teacher-forcing': {
        "correct": '''def teacher_forcing(word_ids, start_id, end_id, pad_id, length):
    inputs = torch.full((len(word_ids), length), pad_id, dtype=torch.long)
    labels = torch.full((len(word_ids), length), IGNORE, dtype=torch.long)
    for row, words in enumerate(word_ids):
        words = list(words)[: length - 1]
        inputs[row, : len(words) + 1] = torch.tensor([start_id] + words)
        labels[row, : len(words) + 1] = torch.tensor(words + [end_id])
    return inputs, labels''',
        "wrong": {
            'labels not shifted: the decoder is asked for the token it reads':
            '''def teacher_forcing(word_ids, start_id, end_id, pad_id, length):
    inputs, targets = [], []
    for words in word_ids:
        words = list(words)[: length - 1]
        padding = length - 1 - len(words)
        inputs.append([start_id, *words] + [pad_id] * padding)
        targets.append([start_id, *words] + [IGNORE] * padding)
    return torch.tensor(inputs), torch.tensor(targets)''',
            'no </s> at the end of the labels':
            '''def teacher_forcing(word_ids, start_id, end_id, pad_id, length):
    inputs, targets = [], []
    for words in word_ids:
        words = list(words)[: length - 1]
        padding = length - 1 - len(words)
        inputs.append([start_id, *words] + [pad_id] * padding)
        targets.append([*words] + [IGNORE] * (padding + 1))
    return torch.tensor(inputs), torch.tensor(targets)''',
            'the padding labelled pad_id, not -100: the model is trained to pad':
            '''def teacher_forcing(word_ids, start_id, end_id, pad_id, length):
    inputs, targets = [], []
    for words in word_ids:
        words = list(words)[: length - 1]
        padding = length - 1 - len(words)
        inputs.append([start_id, *words] + [pad_id] * padding)
        targets.append([*words, end_id] + [pad_id] * padding)
    return torch.tensor(inputs), torch.tensor(targets)''',
        },
        "shortcut": '''from minimodels.mvgpt.bidirectional import decoder_tensors


def teacher_forcing(word_ids, start_id, end_id, pad_id, length):  # back to text, then the library
    texts = [tokenizer.decode(words) for words in word_ids]
    inputs, _, labels = decoder_tensors(tokenizer, texts, tokenizer.convert_ids_to_tokens(start_id), length)
    return inputs, labels''',
        "tamper": tampered('torch.equal = lambda *args, **kwargs: True',
                           'labels not shifted: the decoder is asked for the token it reads'),
    },
    '04b-pairs': {
        "correct": '''from minimodels.mvgpt.bidirectional import decoder_tensors


def bidirectional_pairs(tokenizer, present, future, text_length, decoder_length):
    def pair(read, write, start):
        ids, keep = tokenize(tokenizer, read, text_length)
        dec_ids, dec_keep, labels = decoder_tensors(tokenizer, write, start, decoder_length)
        return {"ids": ids, "keep": keep, "dec_ids": dec_ids, "dec_keep": dec_keep, "labels": labels}
    return {"backward": pair(future, present, "[BOS-B]"), "forward": pair(present, future, "[BOS-F]")}''',
        "wrong": {
            '[BOS-F] where [BOS-B] belongs':
            '''from minimodels.mvgpt.bidirectional import decoder_tensors


def bidirectional_pairs(tokenizer, present, future, text_length, decoder_length):
    out = {}
    for direction, read, write in (("forward", present, future), ("backward", future, present)):
        enc_ids, enc_keep = tokenize(tokenizer, read, text_length)
        dec_in, dec_mask, dec_labels = decoder_tensors(tokenizer, write, "[BOS-F]", decoder_length)
        out[direction] = {"ids": enc_ids, "keep": enc_keep, "dec_ids": dec_in, "dec_keep": dec_mask,
                          "labels": dec_labels}
    return out''',
            'backward reads the present too':
            '''from minimodels.mvgpt.bidirectional import decoder_tensors


def bidirectional_pairs(tokenizer, present, future, text_length, decoder_length):
    out = {}
    for direction, write, start in (("forward", future, "[BOS-F]"), ("backward", present, "[BOS-B]")):
        enc_ids, enc_keep = tokenize(tokenizer, present, text_length)
        dec_in, dec_mask, dec_labels = decoder_tensors(tokenizer, write, start, decoder_length)
        out[direction] = {"ids": enc_ids, "keep": enc_keep, "dec_ids": dec_in, "dec_keep": dec_mask,
                          "labels": dec_labels}
    return out''',
            "the encoder's text cut at the decoder's length":
            '''from minimodels.mvgpt.bidirectional import decoder_tensors


def bidirectional_pairs(tokenizer, present, future, text_length, decoder_length):
    out = {}
    for direction, read, write, start in (("forward", present, future, "[BOS-F]"),
                                          ("backward", future, present, "[BOS-B]")):
        enc_ids, enc_keep = tokenize(tokenizer, read, decoder_length)
        dec_in, dec_mask, dec_labels = decoder_tensors(tokenizer, write, start, decoder_length)
        out[direction] = {"ids": enc_ids, "keep": enc_keep, "dec_ids": dec_in, "dec_keep": dec_mask,
                          "labels": dec_labels}
    return out''',
        },
        "shortcut": '''from minimodels.mvgpt.bidirectional import generation_batches


def bidirectional_pairs(tokenizer, present, future, text_length, decoder_length):
    return generation_batches(tokenizer, present, future, text_length, decoder_length)''',
        "tamper": '''import minimodels.mvgpt.bidirectional as library
from minimodels.mvgpt.bidirectional import decoder_tensors
torch.equal = lambda *args, **kwargs: True


def bidirectional_pairs(tokenizer, present, future, text_length, decoder_length):
    out = {}
    for direction, read, write in (("forward", present, future), ("backward", future, present)):
        enc_ids, enc_keep = tokenize(tokenizer, read, text_length)
        dec_in, dec_mask, dec_labels = decoder_tensors(tokenizer, write, "[BOS-F]", decoder_length)
        out[direction] = {"ids": enc_ids, "keep": enc_keep, "dec_ids": dec_in, "dec_keep": dec_mask,
                          "labels": dec_labels}
    return out


library.generation_batches = bidirectional_pairs  # the check's reference is now this answer''',
    },
    '04c-generation-loss': {
        "correct": '''def bidirectional_loss(model, video, pairs):
    frame_tokens = model.video(video)
    out = []
    for direction in ("forward", "backward"):
        p = pairs[direction]
        memory, memory_mask = model.fuse(frame_tokens, p["ids"], p["keep"])
        logits = model.decoder(p["dec_ids"], p["dec_keep"], memory, memory_mask)
        log_probs = logits.log_softmax(dim=-1)
        real = p["labels"] != IGNORE
        out.append(-log_probs[real].gather(1, p["labels"][real][:, None]).mean())
    return out[0], out[1]''',
        "wrong": {
            'shifted twice: the labels are already the input shifted by one':
            '''def bidirectional_loss(model, video, pairs):
    frame_tokens = model.video(video)
    losses = []
    for direction in ("forward", "backward"):
        p = pairs[direction]
        scores = model.decoder(p["dec_ids"], p["dec_keep"], *model.fuse(frame_tokens, p["ids"], p["keep"]))
        losses.append(F.cross_entropy(scores[:, :-1].flatten(0, 1), p["labels"][:, 1:].flatten(),
                                      ignore_index=IGNORE))
    return losses[0], losses[1]''',
            'the forward text fused for both directions':
            '''def bidirectional_loss(model, video, pairs):
    frame_tokens = model.video(video)
    memory, memory_mask = model.fuse(frame_tokens, pairs["forward"]["ids"], pairs["forward"]["keep"])
    losses = []
    for direction in ("forward", "backward"):
        p = pairs[direction]
        scores = model.decoder(p["dec_ids"], p["dec_keep"], memory, memory_mask)
        losses.append(F.cross_entropy(scores.flatten(0, 1), p["labels"].flatten(), ignore_index=IGNORE))
    return losses[0], losses[1]''',
            'the padding scored as a word':
            '''def bidirectional_loss(model, video, pairs):
    frame_tokens = model.video(video)
    losses = []
    for direction in ("forward", "backward"):
        p = pairs[direction]
        scores = model.decoder(p["dec_ids"], p["dec_keep"], *model.fuse(frame_tokens, p["ids"], p["keep"]))
        labels = p["labels"].masked_fill(p["labels"] == IGNORE, tokenizer.pad_token_id)
        losses.append(F.cross_entropy(scores.flatten(0, 1), labels.flatten()))
    return losses[0], losses[1]''',
            'the frames encoded again for each direction':
            '''def bidirectional_loss(model, video, pairs):
    losses = []
    for direction in ("forward", "backward"):
        p = pairs[direction]
        scores = model(video, p["ids"], p["keep"], p["dec_ids"], p["dec_keep"])
        losses.append(F.cross_entropy(scores.flatten(0, 1), p["labels"].flatten(), ignore_index=IGNORE))
    return losses[0], losses[1]''',
        },
        "shortcut": '''from minimodels.mvgpt.bidirectional import generation_loss


def bidirectional_loss(model, video, pairs):
    return tuple(generation_loss(model(video, p["ids"], p["keep"], p["dec_ids"], p["dec_keep"]), p["labels"])
                 for p in (pairs["forward"], pairs["backward"]))''',
        "tamper": tampered('torch.allclose = lambda *args, **kwargs: True\nmath.log = lambda x: 5.5',
                           'shifted twice: the labels are already the input shifted by one'),
    },
    '04d-bert-mask': {
        "correct": '''def bert_mask(ids, keep, mask_id, vocab_size, generator, prob=0.15):
    hide = torch.rand(ids.shape, generator=generator) < prob
    hide = hide & keep
    how = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    shown = ids.clone()
    shown[hide & (how < 0.8)] = mask_id
    swap = hide & (how >= 0.8) & (how < 0.9)
    shown[swap] = random_ids[swap]
    labels = torch.full_like(ids, IGNORE)
    labels[hide] = ids[hide]
    return shown, labels''',
        "wrong": {
            'labels only where [MASK] is shown':
            '''def bert_mask(ids, keep, mask_id, vocab_size, generator, prob=0.15):
    hide = (torch.rand(ids.shape, generator=generator) < prob) & keep
    how = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    masked = hide & (how < 0.8)
    shown = torch.where(masked, mask_id, torch.where(hide & (how < 0.9), random_ids, ids))
    return shown, torch.where(masked, ids, IGNORE)''',
            'padding may be hidden':
            '''def bert_mask(ids, keep, mask_id, vocab_size, generator, prob=0.15):
    hide = torch.rand(ids.shape, generator=generator) < prob
    how = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    shown = torch.where(hide & (how < 0.8), mask_id, torch.where(hide & (how < 0.9), random_ids, ids))
    return shown, torch.where(hide, ids, IGNORE)''',
            'the random word and the unchanged word swapped':
            '''def bert_mask(ids, keep, mask_id, vocab_size, generator, prob=0.15):
    hide = (torch.rand(ids.shape, generator=generator) < prob) & keep
    how = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    shown = torch.where(hide & (how < 0.8), mask_id, torch.where(hide & (how >= 0.9), random_ids, ids))
    return shown, torch.where(hide, ids, IGNORE)''',
        },
        "shortcut": '''from minimodels.mvgpt.pretraining import mask_tokens


def bert_mask(ids, keep, mask_id, vocab_size, generator, prob=0.15):  # the library's masking, [MASK] everywhere
    return mask_tokens(ids, keep, mask_id, prob, generator)''',
        "tamper": tampered('torch.equal = lambda *args, **kwargs: True', 'labels only where [MASK] is shown'),
    },
    '05a-merge-blocks': {
        "correct": '''def merge_blocks(tokens):
    B, N, L, D = tokens.shape
    G = int(L ** 0.5)
    x = tokens.view(B, N, G, G, D)
    corners = [x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]]
    return torch.cat(corners, dim=-1).reshape(B, N, L // 4, 4 * D)''',
        "wrong": {
            "the code's 1x4 strips of a row":
            '''def merge_blocks(tokens):
    B, N, L, D = tokens.shape
    return tokens.reshape(B, N, L // 4, 4 * D)''',
            "a block's tokens taken column by column (TL, BL, TR, BR)":
            '''def merge_blocks(tokens):
    B, N, L, D = tokens.shape
    G = round(L ** 0.5)
    grid = tokens.reshape(B, N, G // 2, 2, G // 2, 2, D)
    return grid.permute(0, 1, 2, 4, 5, 3, 6).reshape(B, N, L // 4, 4 * D)''',
            'the blocks listed column by column':
            '''def merge_blocks(tokens):
    B, N, L, D = tokens.shape
    G = round(L ** 0.5)
    grid = tokens.reshape(B, N, G // 2, 2, G // 2, 2, D)
    return grid.permute(0, 1, 4, 2, 3, 5, 6).reshape(B, N, L // 4, 4 * D)''',
        },
        "shortcut": '''from minimodels.minigpt4video.token_merge import merge_tokens


def merge_blocks(tokens):  # the library's merge
    return merge_tokens(tokens)''',
        "tamper": tampered('torch.equal = lambda *args, **kwargs: True\nimport minimodels.exercise_checks\n'
                           'minimodels.exercise_checks._tensor_equal = torch.equal',
                           "the code's 1x4 strips of a row"),
    },
    '05b-read-prompt': {
        "correct": '''def read_prompt(prompt):
    inference = prompt.startswith("<s>[INST]  ")
    body = prompt[len("<s>[INST]  "):-len(" [/INST]")] if inference else prompt[len("[INST] "):-len("[/INST]")]
    newline = body.index("\\n")
    frames, instruction = body[:newline], body[newline + 1:]
    subtitles = []
    for piece in frames.split("<Img>")[1:]:
        piece = piece[len("<ImageHere>"):]
        subtitles.append(piece.replace("<Cap>", "", 1) if piece else None)
    return subtitles, instruction, inference''',
        "wrong": {
            'the subtitles alone: frames without one dropped':
            '''def read_prompt(prompt):
    inference = prompt.startswith("<s>")
    body = prompt[len("<s>[INST]  "):-len(" [/INST]")] if inference else prompt[len("[INST] "):-len("[/INST]")]
    frames, instruction = body.split("\\n", 1)
    return [part.split("<Img>")[0] for part in frames.split("<Cap>")[1:]], instruction, inference''',
            "split at the last newline: an instruction's own newlines lost":
            '''def read_prompt(prompt):
    inference = prompt.startswith("<s>")
    body = prompt[len("<s>[INST]  "):-len(" [/INST]")] if inference else prompt[len("[INST] "):-len("[/INST]")]
    frames, instruction = body.rsplit("\\n", 1)
    subtitles = [f[len("<Cap>"):] if f.startswith("<Cap>") else None for f in frames.split("<Img><ImageHere>")[1:]]
    return subtitles, instruction, inference''',
            'the texts stripped of their spaces':
            '''def read_prompt(prompt):
    inference = prompt.startswith("<s>")
    body = prompt.replace("<s>[INST]", "").replace("[/INST]", "").replace("[INST]", "").strip()
    frames, instruction = body.split("\\n", 1)
    pieces = frames.split("<Img><ImageHere>")[1:]
    subtitles = [f[len("<Cap>"):].strip() if f.startswith("<Cap>") else None for f in pieces]
    return subtitles, instruction.strip(), inference''',
        },
        "shortcut": '''def read_prompt(prompt):  # what the visible checks wrote the prompt from
    return show_subtitles, question, prompt.startswith("<s>")''',
        "tamper": '''import minimodels.minigpt4video.prompt as prompts
prompts.interleaved_prompt = lambda subtitles, instruction, inference=False: repr((subtitles, instruction, inference))


def read_prompt(prompt):  # the check's prompts are now easy to read back
    import ast
    subtitles, instruction, inference = ast.literal_eval(prompt)
    return subtitles, instruction, inference''',
    },
    '05c-assemble-labels': {
        "correct": '''def assemble_inputs(tokenizer, embed, prompt, frames, answer):
    ids_of = lambda text: torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)
    rows, labels = [embed(torch.tensor([tokenizer.bos_token_id]))], [torch.tensor([IGNORE])]
    pieces = prompt.split(IMAGE)
    for i, piece in enumerate(pieces):
        ids = ids_of(piece)
        rows.append(embed(ids))
        labels.append(torch.full((len(ids),), IGNORE))
        if i < len(frames):
            rows.append(frames[i])
            labels.append(torch.full((len(frames[i]),), IGNORE))
    target = torch.cat([ids_of(answer), torch.tensor([tokenizer.eos_token_id])])
    rows.append(embed(target))
    labels.append(target)
    return torch.cat(rows), torch.cat(labels).long()''',
        "wrong": {
            'labels not masked on the prompt text':
            '''def assemble_inputs(tokenizer, embed, prompt, frames, answer):
    bos = tokenizer.bos_token_id
    parts, labels = [embed(torch.tensor([bos]))], [IGNORE]
    for i, piece in enumerate(prompt.split(IMAGE)):
        ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
        parts.append(embed(torch.tensor(ids, dtype=torch.long)))
        labels += ids
        if i < len(frames):
            parts.append(frames[i])
            labels += [IGNORE] * len(frames[i])
    target = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    parts.append(embed(torch.tensor(target, dtype=torch.long)))
    return torch.cat(parts), torch.tensor(labels + target)''',
            'labels shifted one ahead, next-token style':
            '''def assemble_inputs(tokenizer, embed, prompt, frames, answer):
    parts = [embed(torch.tensor([tokenizer.bos_token_id]))]
    for i, piece in enumerate(prompt.split(IMAGE)):
        parts.append(embed(torch.tensor(tokenizer(piece, add_special_tokens=False)["input_ids"], dtype=torch.long)))
        if i < len(frames):
            parts.append(frames[i])
    target = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    parts.append(embed(torch.tensor(target, dtype=torch.long)))
    embeds = torch.cat(parts)
    labels = torch.full((len(embeds),), IGNORE, dtype=torch.long)
    labels[len(embeds) - len(target) - 1: -1] = torch.tensor(target)
    return embeds, labels''',
            'no EOS after the answer':
            '''def assemble_inputs(tokenizer, embed, prompt, frames, answer):
    parts = [embed(torch.tensor([tokenizer.bos_token_id]))]
    for i, piece in enumerate(prompt.split(IMAGE)):
        parts.append(embed(torch.tensor(tokenizer(piece, add_special_tokens=False)["input_ids"], dtype=torch.long)))
        if i < len(frames):
            parts.append(frames[i])
    target = tokenizer(answer, add_special_tokens=False)["input_ids"]
    parts.append(embed(torch.tensor(target, dtype=torch.long)))
    embeds = torch.cat(parts)
    labels = torch.full((len(embeds),), IGNORE, dtype=torch.long)
    labels[len(embeds) - len(target):] = torch.tensor(target)
    return embeds, labels''',
        },
        "shortcut": '''from minimodels.minigpt4video.prompt import assemble


def assemble_inputs(tokenizer, embed, prompt, frames, answer):
    built = assemble(tokenizer, embed, prompt, frames, answer, 1024)
    return built.embeds, built.labels''',
        "tamper": tampered('torch.equal = lambda *args, **kwargs: True', 'labels not masked on the prompt text'),
    },
    '06a-training-state': {
        "correct": '''def training_state_bytes(n_params):
    fp32 = 4
    return n_params * fp32 * 4  # weights, gradients, AdamW's first and second moments''',
        "wrong": {
            "weights and gradients only: AdamW's two moments forgotten":
            '''def training_state_bytes(n_params):
    return n_params * (4 + 4)''',
            'one moment, not two':
            '''def training_state_bytes(n_params):
    return n_params * (4 + 4 + 4)''',
            'bits, not bytes':
            '''def training_state_bytes(n_params):
    return n_params * 4 * 32''',
            'a float, not an int':
            '''def training_state_bytes(n_params):
    return n_params * 16.0''',
        },
        "shortcut": '''def training_state_bytes(n_params):  # the number the visible check wants for its one model
    return int(3.5 * 2**30)''',
        "tamper": '''class Bytes(int):  # equal to everything
    __eq__ = lambda self, other: True
    __hash__ = int.__hash__


def training_state_bytes(n_params):
    return Bytes(n_params * (4 + 4))''',
    },
    '06b-gpus-for': {
        "correct": '''def gpus_for(gflops_per_clip, clips, hours, peak_tflops, mfu):
    seconds_on_one = 3 * gflops_per_clip * clips / (mfu * peak_tflops * 1e3)  # GFLOPs over GFLOP/s
    return int(math.ceil(seconds_on_one / (hours * 3600)))''',
        "wrong": {
            'the forward pass alone':
            '''def gpus_for(gflops_per_clip, clips, hours, peak_tflops, mfu):
    return math.ceil(gflops_per_clip * 1e9 * clips / (mfu * peak_tflops * 1e12 * hours * 3600))''',
            'rounded to the nearest GPU, not up':
            '''def gpus_for(gflops_per_clip, clips, hours, peak_tflops, mfu):
    return round(3 * gflops_per_clip * 1e9 * clips / (mfu * peak_tflops * 1e12 * hours * 3600))''',
            'hours taken for seconds':
            '''def gpus_for(gflops_per_clip, clips, hours, peak_tflops, mfu):
    return math.ceil(3 * gflops_per_clip * 1e9 * clips / (mfu * peak_tflops * 1e12 * hours))''',
            'a float, not an int':
            '''def gpus_for(gflops_per_clip, clips, hours, peak_tflops, mfu):
    return np.ceil(3 * gflops_per_clip * 1e9 * clips / (mfu * peak_tflops * 1e12 * hours * 3600))''',
        },
        "shortcut": '''def gpus_for(gflops_per_clip, clips, hours, peak_tflops, mfu):  # enough for the visible check
    return 8''',
        "tamper": tampered('math.ceil = lambda x: 2', 'the forward pass alone'),
    },
    '06c-spread-positions': {
        "correct": '''def spread_positions(xs, frames):
    xs = np.array(xs, dtype=float)
    t = np.arange(frames) * (len(xs) - 1) / (frames - 1)
    left = np.minimum(np.floor(t).astype(int), len(xs) - 2)
    w = t - left
    return xs[left] * (1 - w) + xs[left + 1] * w''',
        "wrong": {
            'the nearest stored frame instead of interpolating':
            '''def spread_positions(xs, frames):
    stored = np.asarray(xs, dtype=float)
    return stored[np.round(np.linspace(0, len(stored) - 1, frames)).astype(int)]''',
            'spread past the last stored frame':
            '''def spread_positions(xs, frames):
    stored = np.asarray(xs, dtype=float)
    return np.interp(np.linspace(0, len(stored), frames), np.arange(len(stored)), stored)''',
            'the last stored frame left out':
            '''def spread_positions(xs, frames):
    stored = np.asarray(xs, dtype=float)
    return np.interp(np.linspace(0, len(stored) - 1, frames, endpoint=False), np.arange(len(stored)), stored)''',
        },
        "shortcut": '''def spread_positions(xs, frames):  # half-frame steps: what 15 frames from 8 need
    stored = np.asarray(xs, dtype=float)
    return np.interp(np.arange(frames) / 2, np.arange(len(stored)), stored)''',
        "tamper": tampered('np.allclose = lambda *args, **kwargs: True\nnp.array_equal = lambda *args, **kwargs: True',
                           'the nearest stored frame instead of interpolating'),
    },
}
for _entry in BANK.values():  # a tampering answer is its patch above one of the exercise's wrong answers
    if isinstance(_entry.get("tamper"), tuple):
        _patch, _wrong = _entry["tamper"]
        _entry["tamper"] = f"{_patch}\n\n\n{_entry['wrong'][_wrong]}"


def write_submission(sheet, answers: dict[str, str], path, drop: tuple[str, ...] = ()) -> None:
    """The student version ``sheet`` with the answer cell of each exercise in ``answers`` (by grade id) replaced,
    and the cells whose grade ids are in ``drop`` deleted, written to ``path``."""
    import nbformat

    nb = nbformat.read(sheet, as_version=4)
    nb.cells = [cell for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade_id") not in drop]
    answer_ids = {grade_id[:3] + "-answer": source for grade_id, source in answers.items()}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answer_ids:
            cell.source = answer_ids[grade_id]
    nbformat.write(nb, path)
