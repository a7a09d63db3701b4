public enum ActuatorsModule {}
