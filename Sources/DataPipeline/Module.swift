public enum DataPipelineModule {}
