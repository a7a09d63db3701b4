public enum AIOSRobotModule {}
