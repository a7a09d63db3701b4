import Planner
import RobotConfig

/// An accepted plan (`ValidatedPlan`) made ready for the dispatch thread: each step's policy
/// resolved to its slot, its limits to durations, its arrays built here, off the dispatch thread.
enum PlanPreparation {
    struct Unplaceable: Error, CustomStringConvertible {
        var description: String
    }

    static func executable(_ plan: ValidatedPlan, abilities: [AbilitySettings], slots: [String: Int]) throws(Unplaceable) -> ExecutablePlan {
        var steps: [ExecutableStep] = []
        for (index, step) in plan.steps.enumerated() {
            var slot: Int?
            if let policy = step.policy {
                guard let s = slots[policy] else { throw Unplaceable(description: "step \(index + 1) (\(step.ability)): policy \(policy) is not running") }
                slot = s
            }
            let action: ExecutableStep.Action = switch step.command {
            case .goto(let point, let speed): .route(points: [(point.x, point.y)], speed: speed)
            case .patrol(let points, let speed): .route(points: points.map { ($0.x, $0.y) }, speed: speed)
            case .setTemperature(let t): .setpoint(t)
            case .hold(let t, let minutes): .hold(temperature: t, seconds: minutes * 60)
            case .wait(let seconds): .wait(seconds: seconds)
            case .stop: .stop
            }
            // Each route its own serial: the policy starts afresh on the next one.
            let serial = plan.goalID &* 1024 &+ UInt64(index + 1)
            let abilityIndex = abilities.firstIndex { $0.name == step.ability }
            var preconditions: StepPreconditions = []
            for p in abilityIndex.map({ abilities[$0].preconditions }) ?? [] {
                switch p {
                case .notLatched: preconditions.insert(.notLatched)
                case .poseKnown: preconditions.insert(.poseKnown)
                case .insideWorkspace: preconditions.insert(.insideWorkspace)
                }
            }
            steps.append(ExecutableStep(action: action, slot: slot, ability: abilityIndex ?? -1,
                                        timeout: step.timeoutS.map { .saturating(seconds: $0) },
                                        minProgress: step.noProgress?.minProgress,
                                        window: step.noProgress.map { .saturating(seconds: $0.timeS) }, serial: serial,
                                        preconditions: preconditions))
        }
        return ExecutablePlan(goalID: plan.goalID, steps: steps, latchEpoch: plan.latchEpoch)
    }
}
