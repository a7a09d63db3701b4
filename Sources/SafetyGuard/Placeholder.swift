public enum SafetyGuardModule {}
