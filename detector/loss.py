"""The SSD loss: smooth-L1 on positive priors plus softmax cross-entropy with hard negatives."""

from __future__ import annotations

from detector._tf import tf

__all__ = ["smooth_l1", "ssd_loss"]


def smooth_l1(diff: tf.Tensor) -> tf.Tensor:
    """Elementwise smooth-L1 (Huber with delta 1)."""
    absolute = tf.abs(diff)
    return tf.where(absolute < 1.0, 0.5 * diff * diff, absolute - 0.5)


def _hard_negatives(cross_entropy, positive, neg_ratio: float, min_negatives: int) -> tf.Tensor:
    """Mask of the highest-loss background priors, `neg_ratio` per positive in each image."""
    background_loss = tf.where(positive, tf.zeros_like(cross_entropy), cross_entropy)
    num_pos = tf.reduce_sum(tf.cast(positive, tf.int32), axis=1, keepdims=True)
    num_priors = tf.shape(cross_entropy)[1]
    # An image without garments still teaches "background" on a few of its hardest priors.
    ratio_count = tf.cast(tf.cast(num_pos, tf.float32) * neg_ratio, tf.int32)
    wanted = tf.where(num_pos > 0, ratio_count, min_negatives)
    num_neg = tf.minimum(wanted, num_priors - num_pos)
    order = tf.argsort(background_loss, axis=1, direction="DESCENDING")
    rank = tf.argsort(order, axis=1)
    return tf.logical_and(rank < num_neg, tf.logical_not(positive))


def ssd_loss(labels, targets, logits, offsets, neg_ratio=3.0, box_weight=1.0, min_negatives=4):
    """(total, classification, localisation) losses, each divided by the number of positives.

    labels (B, P) int, 0 = background; targets (B, P, 4) encoded boxes;
    logits (B, P, C); offsets (B, P, 4). Images without positives keep `min_negatives`.
    """
    labels = tf.cast(labels, tf.int32)
    logits = tf.cast(logits, tf.float32)
    positive = labels > 0
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    negative = _hard_negatives(tf.stop_gradient(cross_entropy), positive, neg_ratio, min_negatives)
    chosen = tf.cast(tf.logical_or(positive, negative), tf.float32)
    num_pos = tf.maximum(tf.reduce_sum(tf.cast(positive, tf.float32)), 1.0)
    cls_loss = tf.reduce_sum(cross_entropy * chosen) / num_pos
    box = tf.reduce_sum(smooth_l1(tf.cast(offsets, tf.float32) - tf.cast(targets, tf.float32)), -1)
    loc_loss = tf.reduce_sum(box * tf.cast(positive, tf.float32)) / num_pos
    return cls_loss + box_weight * loc_loss, cls_loss, loc_loss
