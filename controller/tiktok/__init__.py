"""The TikTok wire: HTTP, paging, rate limits, retries and TikTok's quirks; nothing of BigQuery."""
