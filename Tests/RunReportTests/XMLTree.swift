import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A parsed XML document, small enough for assertions: elements with attributes, text and children.
final class XMLNode {
    let name: String
    let attributes: [String: String]
    var text = ""
    var children: [XMLNode] = []

    init(name: String, attributes: [String: String]) {
        self.name = name
        self.attributes = attributes
    }

    /// Every element below (and including) this one, depth first.
    var all: [XMLNode] { [self] + children.flatMap(\.all) }

    func elements(_ name: String) -> [XMLNode] { all.filter { $0.name == name } }

    /// Elements whose class attribute is `cls`.
    func withClass(_ cls: String) -> [XMLNode] { all.filter { $0.attributes["class"] == cls } }

    /// The text of this element and every one below it.
    var allText: String { text + children.map(\.allText).joined() }

    /// Parses with Foundation's XMLParser (libxml2 underneath): nil with the parser's error if the
    /// document is not well-formed. On Linux `parse()` returns true after some errors (an element
    /// left open, content after the root), so every reported error counts, and the tags are
    /// balanced by hand as well.
    static func parse(_ document: String) -> (root: XMLNode?, error: String?) {
        let parser = XMLParser(data: Data(document.utf8))
        let builder = Builder()
        parser.delegate = builder
        let ok = parser.parse()
        if let error = builder.errors.first ?? parser.parserError.map({ "\($0)" }) { return (nil, error) }
        if !ok { return (nil, "parse failed") }
        if !builder.stack.isEmpty { return (nil, "unclosed <\(builder.stack.map(\.name).joined(separator: "><"))>") }
        return (builder.root, builder.root == nil ? "no root element" : nil)
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var root: XMLNode?
        var stack: [XMLNode] = []
        var errors: [String] = []

        func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) { errors.append("\(parseError)") }

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            let node = XMLNode(name: elementName, attributes: attributeDict)
            if let parent = stack.last { parent.children.append(node) } else { root = node }
            stack.append(node)
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
            if stack.last?.name != elementName { errors.append("</\(elementName)> closes <\(stack.last?.name ?? "nothing")>") }
            _ = stack.popLast()
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            stack.last?.text += string
        }
    }
}

/// Points of a polyline's `points` attribute ("x,y x,y …").
func polylinePoints(_ node: XMLNode) -> [(x: Double, y: Double)] {
    (node.attributes["points"] ?? "").split(separator: " ").compactMap { pair in
        let xy = pair.split(separator: ",")
        guard xy.count == 2, let x = Double(xy[0]), let y = Double(xy[1]) else { return nil }
        return (x, y)
    }
}
