"""What each model looked at: Grad-CAM heatmaps of an image, one per model, computed
on demand from the weights of the version that answered, and kept in the bucket.

`explainer` (no torch) finds the answer, serves a kept heatmap, or has a worker
process render one; `gradcam` (torch) renders it. The API and the dashboard serve
the same heatmaps through `Explainer`; neither process imports torch itself.
"""
