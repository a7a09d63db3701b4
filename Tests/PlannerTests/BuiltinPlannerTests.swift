import Foundation
import Planner
import RobotConfig
import Testing

/// The offline planner's plans go through the same validation as any model's.
@Suite("Built-in planner")
struct BuiltinPlannerTests {
    let rover: PlanningContext
    let rig: PlanningContext

    init() throws {
        rover = try context(roverYAML())
        rig = try context(try rigYAML())
    }

    /// Plans `goal`, sends the plan through JSON (as a back end's answer) and the validator.
    func accepted(_ goal: String, _ c: PlanningContext, world w: WorldState = world(),
                  sourceLocation: SourceLocation = #_sourceLocation) -> [StepCommand]? {
        let outcome = BuiltinPlanner(context: c).plan(goal: goal, world: w)
        guard let plan = outcome.plan else {
            Issue.record("\(goal): \(outcome)", sourceLocation: sourceLocation)
            return nil
        }
        let verdict = PlanValidator(context: c).validate(plan.json.data, request: request(w), world: w)
        #expect(verdict.plan != nil, "\(goal): \(verdict.rejection?.feedback ?? "")", sourceLocation: sourceLocation)
        return verdict.plan?.steps.map(\.command)
    }

    @Test func go_to_a_point_in_the_usual_ways() {
        #expect(accepted("go to 2,3", rover) == [.goto(PlanPoint(x: 2, y: 3), speed: 0.3)])
        #expect(accepted("goto 2 3", rover) == [.goto(PlanPoint(x: 2, y: 3), speed: 0.3)])
        #expect(accepted("Drive to (-1.5, -2) at 0.2 m/s.", rover) == [.goto(PlanPoint(x: -1.5, y: -2), speed: 0.2)])
        #expect(accepted("go to x=4 y=-1", rover) == [.goto(PlanPoint(x: 4, y: -1), speed: 0.3)])
    }

    @Test func patrol_the_corners_of_the_polygon_inside_the_clearance_from_the_nearest_and_back() throws {
        let near = world(pose: WorldState.Pose(x: 4, y: -3, yaw: 0))
        let commands = try #require(accepted("patrol the corners", rover, world: near))
        guard case .patrol(let points, let speed)? = commands.first else {
            Issue.record("not a patrol: \(commands)")
            return
        }
        // Corners moved inside by the clearance (0.3 m) plus 1 cm; the nearest, (5, -4), first.
        let expected = [(4.69, -3.69), (4.69, 3.69), (-4.69, 3.69), (-4.69, -3.69), (4.69, -3.69)]
        #expect(points.count == expected.count)
        for (p, e) in zip(points, expected) { #expect(abs(p.x - e.0) < 1e-9 && abs(p.y - e.1) < 1e-9, "\(p) vs \(e)") }
        #expect(speed == 0.3)
    }

    @Test func patrol_the_corners_of_the_square_inscribed_in_a_radius_workspace() throws {
        let round = try context(roverYAML(workspace: "workspace: {radius: 4, center: [1, 1], warn_margin: 0.3, stop_margin: 0.3, stop_category: 1}"))
        let commands = try #require(accepted("patrol the corners", round))
        guard case .patrol(let points, _)? = commands.first else {
            Issue.record("not a patrol: \(commands)")
            return
        }
        #expect(points.count == 5 && points.first == points.last)
        for p in points.dropLast() {
            #expect(abs(hypot(p.x - 1, p.y - 1) - (4 - 0.31)) < 1e-9)
            #expect(abs(abs(p.x - 1) - abs(p.y - 1)) < 1e-9)  // on the diagonals: a square's corners
        }
        // The corners of an L-shaped arena, the reflex one included, all inside.
        let ell = try context(roverYAML(workspace: "workspace: {polygon: [[0, 0], [4, 0], [4, 2], [2, 2], [2, 4], [0, 4]], warn_margin: 0.3, stop_margin: 0.3, stop_category: 1}"))
        let lCommands = try #require(accepted("patrol the corners", ell, world: world(pose: WorldState.Pose(x: 1, y: 1, yaw: 0))))
        guard case .patrol(let lPoints, _)? = lCommands.first else { return }
        #expect(lPoints.count == 7)
        // The reflex corner (2, 2): its bisector points out of the arena, so the point goes the other way.
        #expect(lPoints.contains { abs($0.x - (2 - 0.31)) < 1e-9 && abs($0.y - (2 - 0.31)) < 1e-9 }, "\(lPoints)")
    }

    @Test func patrol_given_points() {
        #expect(accepted("patrol 1,1 3,1 3,2", rover) == [.patrol([PlanPoint(x: 1, y: 1), PlanPoint(x: 3, y: 1), PlanPoint(x: 3, y: 2)], speed: 0.3)])
    }

    @Test func thermostat_goals() {
        #expect(accepted("hold 24 °C for 30 minutes", rig) == [.hold(temperature: 24, minutes: 30)])
        #expect(accepted("Hold 24C for 1 hour", rig) == [.hold(temperature: 24, minutes: 60)])
        #expect(accepted("set temperature 22", rig) == [.setTemperature(22)])
        #expect(accepted("set the temperature to 21.5 °C", rig) == [.setTemperature(21.5)])
    }

    @Test func stop_wait_and_several_goals_in_a_row() {
        #expect(accepted("stop", rover) == [.stop])
        #expect(accepted("wait 5 s", rover) == [.wait(seconds: 5)])
        #expect(accepted("wait 2 min", rover) == [.wait(seconds: 120)])
        #expect(accepted("go to 2,3 then wait 5 seconds, then stop", rover)
            == [.goto(PlanPoint(x: 2, y: 3), speed: 0.3), .wait(seconds: 5), .stop])
    }

    @Test func anything_else_cannot_be_planned_and_says_why() {
        for goal in ["make coffee", "", "go to the kitchen", "hold 24 °C", "set temperature 75 °F", "wait a bit"] {
            let outcome = BuiltinPlanner(context: rig).plan(goal: goal, world: world())
            guard case .cannotPlan(let why) = outcome else {
                Issue.record("\(goal) was planned: \(outcome)")
                continue
            }
            #expect(why.hasPrefix("cannot plan"), "\(why)")
        }
        // An action the robot has no ability for.
        guard case .cannotPlan(let why) = BuiltinPlanner(context: rover).plan(goal: "hold 24 °C for 30 minutes", world: world()) else {
            Issue.record("planned a hold on a rover")
            return
        }
        #expect(why == "cannot plan this goal: no ability does `hold` (abilities: goto, patrol, stop, wait)")
        #expect(BuiltinPlanner(context: rover).plan(goal: "make coffee", world: world())
            == .cannotPlan("cannot plan \"make coffee\": the built-in planner understands: \(BuiltinPlanner.understood)"))
    }

    @Test func a_goal_beyond_the_limits_is_planned_then_refused_by_validation() throws {
        let w = world()
        let plan = try #require(BuiltinPlanner(context: rover).plan(goal: "go to 100,100", world: w).plan)
        let verdict = PlanValidator(context: rover).validate(plan, request: request(w), world: w)
        expectIssue(verdict.rejection, .outsideWorkspace, path: "steps[0].arguments.x")
        let hot = try #require(BuiltinPlanner(context: rig).plan(goal: "set temperature 70", world: w).plan)
        expectIssue(PlanValidator(context: rig).validate(hot, request: request(w), world: w).rejection, .outOfRange,
                    path: "steps[0].arguments.temperature", "above 59 °C (the heater's interlock less the band)")
    }
}
