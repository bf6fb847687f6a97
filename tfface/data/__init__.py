"""Dataset readers, TFRecord shards and the in-batch hybrid tf.data pipeline."""
