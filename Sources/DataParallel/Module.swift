public enum DataParallelModule {}
