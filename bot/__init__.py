"""Hongguanjia (红管家): a community-office assistant behind a WeChat Official Account."""
