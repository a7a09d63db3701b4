import Foundation
import PlannerBackends
import RobotConfig

/// The gate between any planner and the robot. A plan is decoded (Codable, into a JSON tree),
/// then judged: known abilities only, every argument present, of its type, finite and within its
/// effective bounds, points inside the workspace by the clearance, at most `max_steps` steps,
/// preconditions met, and the world still the one the plan was requested for. Grammar-constrained
/// decoding does not replace this: llama.cpp's grammars do not enforce numeric bounds.
public struct PlanValidator: Sendable {
    public let context: PlanningContext

    /// A plan of `max_steps` steps is far smaller: more is not a plan.
    public static let maxPlanBytes = 64 * 1024
    /// Problems listed in one rejection (the rest are counted).
    public static let maxIssues = 20

    public init(context: PlanningContext) { self.context = context }

    /// Judges a back end's answer against the request it answers and the world state now.
    public func validate(_ data: Data, request: PlanRequest, world: WorldState) -> PlanVerdict {
        switch Self.decode(data) {
        case .success(let document): validate(document, request: request, world: world)
        case .failure(let issue): .rejected(PlanRejection(issues: [issue]))
        }
    }

    public func validate(_ text: String, request: PlanRequest, world: WorldState) -> PlanVerdict {
        validate(Data(text.utf8), request: request, world: world)
    }

    public func validate(_ plan: Plan, request: PlanRequest, world: WorldState) -> PlanVerdict {
        validate(plan.json, request: request, world: world)
    }

    public func validate(_ document: JSONValue, request: PlanRequest, world: WorldState) -> PlanVerdict {
        var issues = IssueList()
        checkFreshness(request: request, world: world, into: &issues)
        var steps: [ValidatedStep] = []
        var stepCount = 0
        if let values = planSteps(document, into: &issues) {
            stepCount = min(values.count, context.settings.maxSteps)
            for (index, value) in values.prefix(context.settings.maxSteps).enumerated() {
                if let step = judge(value, path: "steps[\(index)]", world: world, into: &issues) { steps.append(step) }
            }
        }
        if steps.count == stepCount { checkWays(steps, from: world.pose, into: &issues) }
        guard issues.isEmpty, steps.count == stepCount, stepCount > 0 else {
            return .rejected(PlanRejection(issues: issues.listed, omitted: issues.omitted))
        }
        return .accepted(ValidatedPlan(goalID: request.goal.id, steps: steps, latchEpoch: request.latchEpoch))
    }

    /// Codable decoding of the answer into a tree; the one place bytes become values.
    public static func decode(_ data: Data) -> Result<JSONValue, PlanIssue> {
        guard data.count <= maxPlanBytes else {
            return .failure(PlanIssue(.invalidJSON, "the answer is \(data.count) bytes: a plan is at most \(maxPlanBytes)"))
        }
        do {
            return .success(try JSONDecoder().decode(JSONValue.self, from: data))
        } catch let error as JSONValue.UnrepresentableNumber {
            // The decoder's path is made of the answer's own keys.
            return .failure(PlanIssue(.notFinite, path: AnswerText.bare(error.path, maxBytes: 200),
                                      "a number too large for a finite value (such as 1e999)"))
        } catch let DecodingError.dataCorrupted(context) {
            // The decoder's message has no place; the parser's says where (line, column).
            // It may quote a character of the answer: escaped like any text from it.
            return .failure(PlanIssue(.invalidJSON, "not valid JSON: " + AnswerText.bare(parserMessage(data) ?? context.debugDescription, maxBytes: 200)))
        } catch {
            return .failure(PlanIssue(.invalidJSON, "not valid JSON: " + AnswerText.bare("\(error)", maxBytes: 200)))
        }
    }

    private static func parserMessage(_ data: Data) -> String? {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return nil
        } catch {
            let ns = error as NSError
            return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
        }
    }

    // MARK: The plan's shape

    private func planSteps(_ document: JSONValue, into issues: inout IssueList) -> [JSONValue]? {
        guard case .object(let fields) = document else {
            issues.add(.notAPlan, "", "expected an object {\"steps\": [...]}, got \(Self.kind(document))")
            return nil
        }
        for key in fields.keys.sorted() where key != "steps" {
            issues.add(.unexpectedField, AnswerText.name(key), "unexpected key \(AnswerText.quoted(key)): a plan has only `steps`")
        }
        guard let value = fields["steps"] else {
            issues.add(.notAPlan, "steps", "missing: a plan is {\"steps\": [...]}")
            return nil
        }
        guard case .array(let steps) = value else {
            issues.add(.notAPlan, "steps", "expected a list of steps, got \(Self.kind(value))")
            return nil
        }
        if steps.isEmpty { issues.add(.noSteps, "steps", "the plan has no step (to do nothing, plan `stop`)") }
        if steps.count > context.settings.maxSteps {
            issues.add(.tooManySteps, "steps", "\(steps.count) steps: a plan has at most \(context.settings.maxSteps)")
        }
        return steps
    }

    /// One step: its ability, its arguments, the ability's preconditions. Returns the typed step
    /// when nothing is wrong with it.
    private func judge(_ value: JSONValue, path: String, world: WorldState, into issues: inout IssueList) -> ValidatedStep? {
        let before = issues.count
        guard case .object(let fields) = value else {
            issues.add(.notAPlan, path, "expected a step {\"ability\": …, \"arguments\": {…}}, got \(Self.kind(value))")
            return nil
        }
        for key in fields.keys.sorted() where key != "ability" && key != "arguments" {
            issues.add(.unexpectedField, AnswerText.path(path, key: key), "unexpected key \(AnswerText.quoted(key)): a step has `ability` and `arguments`")
        }
        let names = context.catalog.names
        guard let abilityValue = fields["ability"] else {
            issues.add(.notAPlan, "\(path).ability", "missing; valid: \(names.joined(separator: ", "))")
            return nil
        }
        guard case .string(let name) = abilityValue else {
            issues.add(.wrongType, "\(path).ability", "expected an ability's name, got \(Self.kind(abilityValue)); valid: \(names.joined(separator: ", "))")
            return nil
        }
        guard let ability = context.catalog.ability(named: name) else {
            issues.add(.unknownAbility, "\(path).ability", "unknown ability \(AnswerText.name(name)); valid: \(names.joined(separator: ", "))")
            return nil
        }
        let arguments: [String: JSONValue]
        switch fields["arguments"] {
        case nil, .null?: arguments = [:]
        case .object(let object)?: arguments = object
        case let other?:
            issues.add(.wrongType, "\(path).arguments", "expected an object of arguments, got \(Self.kind(other))")
            return nil
        }
        let argumentNames = ability.arguments.map(\.name)
        for key in arguments.keys.sorted() where ability.argument(named: key) == nil {
            // The ability's name is the configuration's; `key` is still the answer's.
            issues.add(.unknownArgument, AnswerText.path("\(path).arguments", key: key),
                       argumentNames.isEmpty ? "`\(ability.name)` takes no arguments"
                           : "`\(ability.name)` has no argument \(AnswerText.isPlain(key) ? "`\(key)`" : AnswerText.quoted(key)); valid: \(argumentNames.joined(separator: ", "))")
        }
        var numbers: [String: Double] = [:]
        var points: [PlanPoint] = []
        for argument in ability.arguments {
            let argumentPath = "\(path).arguments.\(argument.name)"
            guard let value = arguments[argument.name] else {
                if argument.spec.required {
                    issues.add(.missingArgument, argumentPath, "missing: \(argument.description) (\(argument.spec.unit))")
                }
                continue
            }
            switch argument.shape {
            case .number(let bounds):
                if let number = finiteNumber(value, path: argumentPath, into: &issues),
                   within(number, bounds, unit: argument.spec.unit, path: argumentPath, into: &issues) {
                    numbers[argument.name] = number
                }
            case .points(let xBounds, let yBounds, let maxCount):
                points = judgePoints(value, x: xBounds, y: yBounds, maxCount: maxCount, path: argumentPath, into: &issues)
            }
        }
        if ability.action == .goto, let x = numbers["x"], let y = numbers["y"], !context.admits(x: x, y: y) {
            issues.add(.outsideWorkspace, "\(path).arguments", outsideText(x: x, y: y))
        }
        checkPreconditions(ability, path: path, world: world, into: &issues)
        guard issues.count == before else { return nil }
        let command: StepCommand
        switch ability.action {
        case .goto:
            guard let x = numbers["x"], let y = numbers["y"] else { return nil }
            command = .goto(PlanPoint(x: x, y: y), speed: numbers["speed"] ?? ability.defaultSpeed)
        case .patrol:
            command = .patrol(points, speed: numbers["speed"] ?? ability.defaultSpeed)
        case .setTemperature:
            guard let t = numbers["temperature"] else { return nil }
            command = .setTemperature(t)
        case .hold:
            guard let t = numbers["temperature"], let minutes = numbers["minutes"] else { return nil }
            command = .hold(temperature: t, minutes: minutes)
        case .stop:
            command = .stop
        case .wait:
            guard let seconds = numbers["seconds"] else { return nil }
            command = .wait(seconds: seconds)
        }
        return ValidatedStep(ability: ability.name, action: ability.action.rawValue, policy: ability.policy, command: command,
                             timeoutS: ability.timeoutS,
                             noProgress: ability.noProgress.map { NoProgressLimit(minProgress: $0.minProgress, timeS: $0.timeS) })
    }

    private func judgePoints(_ value: JSONValue, x: NumericBounds, y: NumericBounds, maxCount: Int, path: String,
                             into issues: inout IssueList) -> [PlanPoint] {
        guard case .array(let items) = value else {
            issues.add(.wrongType, path, "expected a list of points [{\"x\": …, \"y\": …}, …], got \(Self.kind(value))")
            return []
        }
        if items.isEmpty { issues.add(.missingArgument, path, "the list has no point") }
        if items.count > maxCount { issues.add(.tooManyPoints, path, "\(items.count) points: at most \(maxCount)") }
        var points: [PlanPoint] = []
        for (index, item) in items.prefix(maxCount).enumerated() {
            let pointPath = "\(path)[\(index)]"
            guard case .object(let fields) = item else {
                issues.add(.wrongType, pointPath, "expected a point {\"x\": …, \"y\": …}, got \(Self.kind(item))")
                continue
            }
            for key in fields.keys.sorted() where key != "x" && key != "y" {
                issues.add(.unexpectedField, AnswerText.path(pointPath, key: key), "unexpected key \(AnswerText.quoted(key)): a point has `x` and `y`")
            }
            var coordinates: [Double] = []
            for (axis, bounds) in [("x", x), ("y", y)] {
                guard let v = fields[axis] else {
                    issues.add(.missingArgument, "\(pointPath).\(axis)", "missing (m)")
                    continue
                }
                if let number = finiteNumber(v, path: "\(pointPath).\(axis)", into: &issues),
                   within(number, bounds, unit: "m", path: "\(pointPath).\(axis)", into: &issues) {
                    coordinates.append(number)
                }
            }
            guard coordinates.count == 2 else { continue }
            if context.admits(x: coordinates[0], y: coordinates[1]) {
                points.append(PlanPoint(x: coordinates[0], y: coordinates[1]))
            } else {
                issues.add(.outsideWorkspace, pointPath, outsideText(x: coordinates[0], y: coordinates[1]))
            }
        }
        return points
    }

    /// The straight ways a plan's routes drive, one after the other — from the pose to the first
    /// point, then from point to point, across steps —, each inside the workspace by the clearance
    /// along its whole length: a point-by-point check passes a way that cuts a non-convex
    /// workspace's corner. Without a known pose, the first way is not judged (`pose_known` says
    /// whether one is needed).
    private func checkWays(_ steps: [ValidatedStep], from pose: WorldState.Pose?, into issues: inout IssueList) {
        guard context.workspace != nil else { return }
        var at: PlanPoint? = pose.flatMap { $0.isFinite ? PlanPoint(x: $0.x, y: $0.y) : nil }
        var fromPose = at != nil
        for (index, step) in steps.enumerated() {
            let route: [(point: PlanPoint, path: String)]
            switch step.command {
            case .goto(let point, _): route = [(point, "steps[\(index)].arguments")]
            case .patrol(let points, _): route = points.enumerated().map { ($0.element, "steps[\(index)].arguments.points[\($0.offset)]") }
            default: continue
            }
            for (point, path) in route {
                if let start = at, !context.admits(from: start, to: point, isPose: fromPose) {
                    issues.add(.outsideWorkspace, path, wayText(from: start, to: point, fromPose: fromPose))
                }
                at = point
                fromPose = false
            }
        }
    }

    private func wayText(from a: PlanPoint, to b: PlanPoint, fromPose: Bool) -> String {
        let m = context.margin(from: a, to: b)
        let way = "the way from \(fromPose ? "the robot at " : "")(\(show(a.x)), \(show(a.y))) to (\(show(b.x)), \(show(b.y)))"
        return m.leaves || m.distance < 0 ? "\(way) leaves the workspace"
            : "\(way) passes \(show(m.distance)) m from the workspace's edge: at least \(show(context.clearance)) m inside"
    }

    // MARK: Values

    /// What a value is, in words (for "expected a number, got …"), a string quoted and escaped.
    static func kind(_ value: JSONValue) -> String {
        value.kindText
    }

    /// A JSON number that is finite. Strings are never numbers, and one that means NaN or an
    /// infinity is named as such (a model that cannot write NaN in JSON may quote it).
    private func finiteNumber(_ value: JSONValue, path: String, into issues: inout IssueList) -> Double? {
        switch value {
        case .number(let d) where d.isFinite:
            return d
        case .number:
            issues.add(.notFinite, path, "not a finite number")
        case .string(let s):
            let word = s.trimmingCharacters(in: .whitespaces).lowercased()
            let nonFinite = ["nan", "-nan", "+nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"]
            if nonFinite.contains(word) || Double(word).map({ !$0.isFinite }) == true {
                issues.add(.notFinite, path, "the string \(AnswerText.quoted(s)) is not a finite number")
            } else if Double(word) != nil {
                issues.add(.wrongType, path, "the string \(AnswerText.quoted(s)) is a string: write the number without quotes")
            } else {
                issues.add(.wrongType, path, "expected a number, got \(Self.kind(value))")
            }
        default:
            issues.add(.wrongType, path, "expected a number, got \(Self.kind(value))")
        }
        return nil
    }

    private func within(_ value: Double, _ bounds: NumericBounds, unit: String, path: String, into issues: inout IssueList) -> Bool {
        let range = "\(show(bounds.lower.value))…\(show(bounds.upper.value)) \(unit)"
        if value > bounds.upper.value {
            issues.add(code(for: bounds.upper.source), path,
                       "\(show(value)) \(unit) is above \(show(bounds.upper.value)) \(unit) (\(bounds.upper.source.text)); allowed: \(range)")
            return false
        }
        if value < bounds.lower.value {
            issues.add(code(for: bounds.lower.source), path,
                       "\(show(value)) \(unit) is below \(show(bounds.lower.value)) \(unit) (\(bounds.lower.source.text)); allowed: \(range)")
            return false
        }
        return true
    }

    private func code(for source: BoundSource) -> PlanIssue.Code {
        switch source {
        case .plannerEnvelope: .speedAboveEnvelope
        case .workspace: .outsideWorkspace
        default: .outOfRange
        }
    }

    private func outsideText(x: Double, y: Double) -> String {
        let inside = context.workspace.map { $0.signedDistance(x: x, y: y) } ?? .infinity
        let place = "the point (\(show(x)), \(show(y)))"
        return inside < 0 ? "\(place) is outside the workspace"
            : "\(place) is \(show(inside)) m from the workspace's edge: at least \(show(context.clearance)) m inside"
    }

    // MARK: The world

    private func checkPreconditions(_ ability: ResolvedAbility, path: String, world: WorldState, into issues: inout IssueList) {
        for precondition in ability.preconditions {
            let pose = world.pose.flatMap { $0.isFinite ? $0 : nil }
            let failure: String?
            switch precondition {
            case .notLatched:
                failure = world.latched || !world.stopCauses.isEmpty
                    ? "a stop is latched (\(world.stopCauses.isEmpty ? "awaiting a reset" : world.stopCauses.joined(separator: ", ")))" : nil
            case .poseKnown:
                failure = pose == nil ? "the pose is unknown" : nil
            case .insideWorkspace:
                if let pose {
                    failure = (context.workspace?.signedDistance(x: pose.x, y: pose.y) ?? 0) < 0 ? "the robot is outside the workspace" : nil
                } else {
                    failure = "the pose is unknown"
                }
            }
            if let failure {
                issues.add(.preconditionFailed, path, "`\(ability.name)` needs \(precondition.rawValue): \(failure)")
            }
        }
    }

    /// The plan was made from `request.world`; is the world now still that one where it matters?
    private func checkFreshness(request: PlanRequest, world: WorldState, into issues: inout IssueList) {
        let then = request.world
        let settings = context.settings
        if world.mode != then.mode {
            issues.add(.staleMode, "", "the mode changed from \(then.mode) to \(world.mode) since the request")
        }
        if world.latched != then.latched || world.stopCauses != then.stopCauses {
            func words(_ w: WorldState) -> String {
                w.stopCauses.isEmpty ? (w.latched ? "latched" : "none") : w.stopCauses.joined(separator: ", ")
            }
            issues.add(.staleStopCauses, "", "the stop causes changed from \(words(then)) to \(words(world)) since the request")
        } else if world.latchEpoch != request.latchEpoch {
            // Latched and reset between two looks: the flags are back, the epoch is not. Nothing
            // planned before a stop may start after its reset.
            issues.add(.staleStopCauses, "", "a stop latched since the goal was taken (latch epoch \(request.latchEpoch), now \(world.latchEpoch))")
        }
        if world.goal?.id != request.goal.id {
            issues.add(.staleGoal, "", world.goal.map { "goal \($0.id) replaced goal \(request.goal.id)" }
                ?? "goal \(request.goal.id) is no longer the robot's goal")
        }
        let posesThen = then.pose.flatMap { $0.isFinite ? $0 : nil }, posesNow = world.pose.flatMap { $0.isFinite ? $0 : nil }
        switch (posesThen, posesNow) {
        case (let a?, let b?):
            let moved = a.distance(to: b)
            if moved > settings.maxPoseDrift {
                issues.add(.stalePose, "", "the robot moved \(show(moved)) m since the request (more than \(show(settings.maxPoseDrift)) m)")
            }
        case (nil, nil):
            break
        case (_?, nil):
            issues.add(.stalePose, "", "the pose became unknown since the request")
        case (nil, _?):
            issues.add(.stalePose, "", "the pose became known since the request")
        }
        let age = world.timeS - then.timeS
        if !age.isFinite || age > settings.maxPlanAgeS {
            issues.add(.staleAge, "", "requested \(show(age)) s ago (at most \(show(settings.maxPlanAgeS)) s)")
        }
    }
}

public enum PlanVerdict: Sendable, Equatable {
    case accepted(ValidatedPlan)
    case rejected(PlanRejection)

    public var plan: ValidatedPlan? { if case .accepted(let p) = self { p } else { nil } }
    public var rejection: PlanRejection? { if case .rejected(let r) = self { r } else { nil } }
}

/// Problems in the order found, each once, at most `PlanValidator.maxIssues` listed.
struct IssueList {
    private(set) var listed: [PlanIssue] = []
    private(set) var omitted = 0
    /// Every problem found, repeats included: a step is judged by whether this grew.
    private(set) var count = 0
    var isEmpty: Bool { count == 0 }

    mutating func add(_ code: PlanIssue.Code, _ path: String, _ message: String) {
        count += 1
        let issue = PlanIssue(code, path: path, message)
        if listed.contains(issue) { return }
        if listed.count < PlanValidator.maxIssues { listed.append(issue) } else { omitted += 1 }
    }
}

/// Numbers in messages: at most 6 significant digits (`0.6`, not `0.6000000000000001`).
func show(_ value: Double) -> String {
    guard value.isFinite else { return value.isNaN ? "NaN" : (value > 0 ? "infinity" : "-infinity") }
    if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
    return String(format: "%.6g", value)
}
