"""What pages read, without torch: run views, statistics, suspects, decisions and maps."""
