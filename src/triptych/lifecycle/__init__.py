"""The model lifecycle: the retraining workflow (gather, train in parallel,
evaluate beside the champion, gate), the shadow phase that promotes a challenger
on live labelled images, and the scheduled data-quality and metrics jobs."""
