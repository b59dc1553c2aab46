// The @element-plus/icons-vue icons the console uses, registered globally by name. Pages name icons as
// strings (`:icon="'Refresh'"`, menus.js `icon: 'Calendar'` drawn with <component :is>, ReviewView's
// LEVEL_ICON) and as tags (<Search />), which Vue resolves from the app's registry at run time, so the
// build cannot see them: a new icon must be added here, or it silently draws nothing (Vue warns
// "Failed to resolve component"). Registering only these instead of all ~290 keeps the first load small.
import {
  ArrowDown, ArrowLeft, Bell, Calendar, Camera, Checked, CircleCheck, CircleCheckFilled, CircleCloseFilled, Close,
  CloseBold, DataAnalysis, Document, DocumentAdd, Download, Edit, Finished, House, InfoFilled, Link, Location, Lock,
  MapLocation, Picture, Plus, Postcard, Printer, Refresh, RefreshRight, Search, Select, Switch, Tickets, TrendCharts,
  Upload, UploadFilled, User, View, WarningFilled,
} from '@element-plus/icons-vue'

export const ICONS = {
  ArrowDown, ArrowLeft, Bell, Calendar, Camera, Checked, CircleCheck, CircleCheckFilled, CircleCloseFilled, Close,
  CloseBold, DataAnalysis, Document, DocumentAdd, Download, Edit, Finished, House, InfoFilled, Link, Location, Lock,
  MapLocation, Picture, Plus, Postcard, Printer, Refresh, RefreshRight, Search, Select, Switch, Tickets, TrendCharts,
  Upload, UploadFilled, User, View, WarningFilled,
}

export function registerIcons(app) {
  for (const [name, component] of Object.entries(ICONS)) app.component(name, component)
}
