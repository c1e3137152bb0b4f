// Cell renderers for dash-ag-grid (History page).
var dagcomponentfuncs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});

// A thumbnail that opens the image's page; list views only ever load thumbnails.
dagcomponentfuncs.ThumbLink = function (props) {
    return React.createElement(
        "a",
        {href: "/image/" + props.value},
        React.createElement("img", {src: "/media/" + props.value + "/thumb", className: "grid-thumb", loading: "lazy"})
    );
};
